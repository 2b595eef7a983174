pub mod payments;
pub mod webhooks;
