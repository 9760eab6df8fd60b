//! faultline-results
