"""Qt user interface: overlay, control window, settings, tray."""
