//! faultline's systems under test.
