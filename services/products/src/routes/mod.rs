pub mod categories;
pub mod products;
