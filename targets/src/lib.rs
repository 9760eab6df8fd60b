//! faultline-targets
