//! User name and password for the broker's CONNECT.

/// MQTT user name and password. `Debug` prints the password as `<redacted>`, so settings that
/// hold credentials can be logged with `{:?}`.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    /// Empty when none was given (CONNECT then carries the user name alone).
    pub password: String,
}

impl Credentials {
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Credentials { username: username.into(), password: password.into() }
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("username", &self.username).field("password", &"<redacted>").finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_the_password() {
        let text = format!("{:?}", Some(Credentials::new("agent-7", "s3cr3t-pw")));
        assert!(text.contains("agent-7"), "{text}");
        assert!(text.contains("<redacted>"), "{text}");
        assert!(!text.contains("s3cr3t-pw"), "{text}");
    }
}
