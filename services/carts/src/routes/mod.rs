pub mod carts;
