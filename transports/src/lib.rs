//! zeroring-transports: endpoints and the sans-IO ZMTP protocol (the `[zmtp]` issue).
