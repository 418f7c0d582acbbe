pub mod dashboard;
pub mod demo;
pub mod health;
pub mod migrate;
pub mod serve;
pub mod token;
