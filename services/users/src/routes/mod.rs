pub mod auth;
pub mod clients;
pub mod oauth;
pub mod users;
pub mod well_known;
