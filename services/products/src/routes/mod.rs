pub mod categories;
pub mod pages;
pub mod products;
