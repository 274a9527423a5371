//! zeroring-engine
