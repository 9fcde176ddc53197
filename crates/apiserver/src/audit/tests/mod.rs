mod event;
mod log;
mod policy;
