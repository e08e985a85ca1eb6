//! Dovecot passwd-file authentication (stub: being written).
/// Users from a Dovecot passwd-file.
#[derive(Debug, Clone)]
pub struct PasswdFile;
