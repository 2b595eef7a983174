pub mod reservations;
pub mod stock;
