pub mod payments;
pub mod views;
pub mod webhooks;
