//! The TruSTAR custom threat service's lookup (spec D.5 "Threat service"): an artifact value is
//! searched (`indicators/search`) in the `[trustar_threat_source]` enclaves, and an exact match
//! whose priority is HIGH or MEDIUM is a hit with the original's one property:
//! `{"props": [{"type": "string", "name": "Priority Level", "value": "HIGH"}]}`. (No link: the
//! platform would keep it with the artifact, it would reach the report body, and TruSTAR would
//! extract it as one more indicator.)
//!
//! The host serves it as `<urlbase>/trustar` (cache, 303 polling, authentication, HTTPS).

use soar_sdk::{FunctionError, Hit, ThreatArtifact, ThreatService};

use crate::client::TrustarClient;
use crate::config::ThreatSource;
use crate::error::TrustarError;

/// The threat service's name: it is served at `<urlbase>/trustar`.
pub const NAME: &str = "trustar";

/// Looks artifacts up in the threat source's account.
#[derive(Debug, Clone)]
pub struct Searcher {
    client: TrustarClient,
    enclaves: Vec<String>,
}

impl Searcher {
    pub fn new(source: &ThreatSource) -> Searcher {
        Searcher {
            client: TrustarClient::new(source.connection.clone()),
            enclaves: source.enclaves_for_search.clone(),
        }
    }

    /// The hits for one artifact value.
    pub async fn hits_for(&self, value: &str) -> Result<Vec<Hit>, TrustarError> {
        let found = self.client.search_indicators(value, &self.enclaves).await?;
        let Some(indicator) = found.into_iter().find(|i| i.value == value) else {
            return Ok(Vec::new());
        };
        let level = indicator.priority_level.unwrap_or_default();
        if level != "HIGH" && level != "MEDIUM" {
            return Ok(Vec::new());
        }
        Ok(vec![Hit::new().string("Priority Level", level)])
    }
}

impl ThreatService for Searcher {
    async fn search(&self, artifact: ThreatArtifact) -> Result<Vec<Hit>, FunctionError> {
        self.hits_for(&artifact.value)
            .await
            .map_err(|e| FunctionError::external("TruSTAR", e))
    }
}
