//! `ops`: what admins run against the backend. Each command is a function returning the text
//! it prints, so tests check exactly what an admin sees; the rules themselves live in the
//! libraries (`g3-store` for the schema, `g3-access` for grants and failures).

pub mod commands;
pub mod outcomes;
pub mod signals;

use std::time::Duration;

use g3_appwrite::{ApiKey, Client, Config};

/// Where the backend is and the server key to use. Built once in `main` from the environment.
#[derive(Clone, Debug)]
pub struct Settings {
    pub endpoint: String,
    pub project_id: String,
    pub api_key: ApiKey,
}

impl Settings {
    /// An Appwrite client with the server key, patient enough for schema work.
    pub fn client(&self) -> anyhow::Result<Client> {
        let mut config = Config::new(&self.endpoint, &self.project_id);
        config.api_key = Some(self.api_key.clone());
        config.timeout = Duration::from_secs(30);
        Ok(Client::new(config)?)
    }
}
