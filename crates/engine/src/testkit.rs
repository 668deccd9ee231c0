//! The end-to-end test kit: starts the simulated platform, runs components in this engine (REST
//! login, STOMP over TLS, dispatcher, threat-service server) and lets a test invoke functions and
//! assert on the replies. For a handler's behaviour alone, the SDK's unit kit
//! (`soar_sdk::testkit`) is faster.
//!
//! ```no_run
//! # async fn t() -> Result<(), soar_engine::testkit::TestKitError> {
//! use soar_engine::testkit::{Run, TestHost};
//! let host = TestHost::start(vec![Run::Registered("fn_hello")]).await?;
//! let reply = host.call("fn_hello", serde_json::json!({"hello_text": "hi"})).await?;
//! assert_eq!(reply.results.unwrap()["content"]["text"], "hi");
//! # Ok(()) }
//! ```

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use soar_customizations::{Customizations, Source};
use soar_sdk::{Component, registered};
use soar_sim::{Invocation, Reply, Sim, SimConfig};

use crate::app::{self, AppError};
use crate::config::AppConfig;
use crate::customize;
use crate::load::{LoadedComponent, check_adhoc, load_component};

/// Options of a [`TestHost`].
#[derive(Debug, Clone)]
pub struct TestOptions {
    /// Settings of the simulated platform.
    pub sim: SimConfig,
    /// Extra lines for `[resilient]` (e.g. `num_workers = 10`).
    pub resilient: String,
    /// Extra app.config sections (the components' own sections).
    pub sections: String,
    /// How long to wait for the host to subscribe.
    pub start_timeout: Duration,
}

impl Default for TestOptions {
    fn default() -> Self {
        TestOptions {
            sim: SimConfig::default(),
            resilient: String::new(),
            sections: String::new(),
            start_timeout: Duration::from_secs(20),
        }
    }
}

/// Errors of the test kit.
#[derive(Debug, thiserror::Error)]
pub enum TestKitError {
    #[error("simulated platform: {0}")]
    Sim(#[from] soar_sim::SimError),
    #[error("host: {0}")]
    Host(#[from] AppError),
    #[error("app.config: {0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("no registered component named '{0}' (is the crate linked with `use x as _;`?)")]
    NotRegistered(String),
    #[error("the host did not subscribe within {0:?}")]
    StartTimeout(Duration),
    #[error("the host stopped: {0}")]
    Stopped(String),
    #[error("timed out after {0:?} waiting for {1}")]
    Timeout(Duration, String),
    #[error("cannot write the app.config: {0}")]
    Io(#[from] std::io::Error),
}

/// A component that is not registered through `inventory` (built in the test itself), with its
/// customizations as YAML text.
///
/// # Panics
/// When the YAML does not parse or validate, or does not define the component's functions.
pub fn adhoc(name: &str, component: Component, yaml: &str) -> LoadedComponent {
    let file = format!("{name} (test YAML)");
    let definitions = Customizations::parse(&[Source {
        file: &file,
        text: yaml,
    }])
    .and_then(|c| c.validate().map(|()| c))
    .unwrap_or_else(|e| panic!("{e}"));
    if let Err(e) = check_adhoc(name, &component, &definitions) {
        panic!("{e}");
    }
    LoadedComponent {
        name: name.to_string(),
        version: "0.0.0-test".to_string(),
        component,
        definitions: Some(definitions),
    }
}

/// Pushes `definitions` to a simulated platform with the library call behind `host customize -y`.
pub async fn customize_sim(
    sim: &Sim,
    definitions: &Customizations,
) -> Result<customize::PushReport, TestKitError> {
    let rest = sim_rest(sim).await?;
    Ok(customize::push(&rest, definitions, |_| true, &mut |line| {
        tracing::debug!("customize: {line}")
    })
    .await
    .map_err(AppError::from)?)
}

/// Parses and validates customization YAML written in a test.
///
/// # Panics
/// When it does not parse or validate.
pub fn definitions_from_yaml(yaml: &str) -> Customizations {
    Customizations::parse(&[Source {
        file: "test YAML",
        text: yaml,
    }])
    .and_then(|c| c.validate().map(|()| c))
    .unwrap_or_else(|e| panic!("{e}"))
}

/// Imports `export` into a simulated platform as it is, as another tool (an original app's
/// `resilient-circuits customize`) would, and accepts the import.
pub async fn import_sim(sim: &Sim, export: &serde_json::Value) -> Result<(), TestKitError> {
    let rest = sim_rest(sim).await?;
    let mut created = (rest.post("/configurations/imports", export).await)
        .map_err(|e| TestKitError::Host(e.into()))?;
    let id = created["id"].as_i64().unwrap_or_default();
    created["status"] = serde_json::json!("ACCEPTED");
    (rest
        .put(&format!("/configurations/imports/{id}"), &created)
        .await)
        .map_err(|e| TestKitError::Host(e.into()))?;
    Ok(())
}

/// Replaces a script of the function step of `workflow` in an export (`key`:
/// `pre_processing_script` or `post_processing_script`), as a person editing the workflow on
/// the platform would (tests of scripts our exporter does not write: the original apps' own).
/// Panics when the export has no such workflow or step.
pub fn set_workflow_script(
    export: &mut serde_json::Value,
    workflow: &str,
    key: &str,
    script: &str,
) {
    let w = (export["workflows"].as_array_mut().into_iter().flatten())
        .find(|w| w["programmatic_name"] == workflow)
        .unwrap_or_else(|| panic!("no workflow {workflow} in the export"));
    let xml = w["content"]["xml"].as_str().unwrap_or_default().to_string();
    let open = xml
        .find("<resilient:function uuid=")
        .unwrap_or_else(|| panic!("workflow {workflow} has no function step"));
    let start = open + xml[open..].find('>').unwrap_or_default() + 1;
    let end = start
        + xml[start..]
            .find("</resilient:function>")
            .unwrap_or_default();
    let text = xml[start..end]
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    let mut step: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("workflow {workflow}: {e}"));
    step[key] = serde_json::json!(script);
    let text = step
        .to_string()
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    w["content"]["xml"] = serde_json::json!(format!("{}{text}{}", &xml[..start], &xml[end..]));
}

/// A REST client logged in to `sim` with its own app.config.
async fn sim_rest(sim: &Sim) -> Result<soar_rest::RestClient, TestKitError> {
    let config = AppConfig::parse(&sim.app_config(), std::path::Path::new("sim.app.config"))?;
    let opts = crate::config::ResilientOptions::from_config(&config)?;
    Ok(soar_rest::RestClient::connect(app::rest_config(&opts)?)
        .await
        .map_err(AppError::from)?)
}

/// The validated customizations of a registered component.
pub fn definitions_of(name: &str) -> Result<Customizations, TestKitError> {
    let registration = soar_sdk::registry::find(name)
        .ok_or_else(|| TestKitError::NotRegistered(name.to_string()))?;
    Ok(registration.definitions().map_err(AppError::from)?)
}

/// The simulated platform's `[resilient]` lines with `overrides` applied: a key given in
/// `overrides` replaces the platform's, and an override with an empty value removes the key.
pub fn merge_resilient(platform: &str, overrides: &str) -> String {
    fn key(line: &str) -> Option<String> {
        let (k, _) = line.split_once(['=', ':'])?;
        Some(k.trim().to_ascii_lowercase())
    }
    let overridden: Vec<(String, bool)> = overrides
        .lines()
        .filter_map(|l| Some((key(l)?, l.split_once(['=', ':'])?.1.trim().is_empty())))
        .collect();
    let mut out = String::new();
    for line in platform.lines() {
        if key(line).is_some_and(|k| overridden.iter().any(|(o, _)| *o == k)) {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    for line in overrides.lines() {
        if key(line).is_some_and(|k| overridden.iter().any(|(o, empty)| *o == k && *empty)) {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// A simulated platform plus a host running the given components against it.
pub struct TestHost {
    sim: Sim,
    config_path: PathBuf,
    queues: Vec<String>,
    host: Option<app::HostHandle>,
    _dir: tempfile::TempDir,
}

impl std::fmt::Debug for TestHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestHost")
            .field("queues", &self.queues)
            .finish_non_exhaustive()
    }
}

/// What to run: registered components by name, or ad-hoc ones.
#[derive(Debug, Clone)]
pub enum Run {
    Registered(&'static str),
    Adhoc(Box<LoadedComponent>),
}

impl TestHost {
    /// Starts with default options.
    pub async fn start(run: Vec<Run>) -> Result<TestHost, TestKitError> {
        Self::start_with(run, TestOptions::default()).await
    }

    /// Starts with these app.config sections (INI text) for the components.
    pub async fn start_with_sections(
        run: Vec<Run>,
        sections: impl Into<String>,
    ) -> Result<TestHost, TestKitError> {
        let options = TestOptions {
            sections: sections.into(),
            ..TestOptions::default()
        };
        Self::start_with(run, options).await
    }

    /// Starts the simulated platform, registers every function of `run` on a message destination
    /// named after its component, and runs the host until it has subscribed.
    pub async fn start_with(run: Vec<Run>, options: TestOptions) -> Result<TestHost, TestKitError> {
        let sim = Sim::start(options.sim.clone()).await?;
        let dir = tempfile::tempdir()?;
        // Each test host its own journal, unless the test sets one.
        let platform = format!(
            "{}\njournal_path = {}\n",
            sim.app_config().trim_end(),
            dir.path().join("journal").display()
        );
        let text = format!(
            "{}\n{}\n",
            merge_resilient(&platform, &options.resilient),
            options.sections
        );
        let config_path = dir.path().join("app.config");
        std::fs::write(&config_path, &text)?;
        let config = AppConfig::load(&config_path)?;
        let mut components = Vec::new();
        for r in run {
            let loaded = match r {
                Run::Registered(name) => {
                    let registration = registered()
                        .into_iter()
                        .find(|reg| reg.name == name)
                        .ok_or_else(|| TestKitError::NotRegistered(name.to_string()))?;
                    load_component(registration, &config)?
                }
                Run::Adhoc(c) => *c,
            };
            components.push(loaded);
        }
        // Set up the platform as an operator would: `host customize -y`.
        let definitions =
            customize::merged(components.iter().filter_map(|c| c.definitions.clone()))
                .map_err(AppError::from)?;
        customize_sim(&sim, &definitions).await?;
        let mut host = app::spawn(config, components);
        let queues = match host.ready(options.start_timeout).await {
            Ok(queues) => queues,
            Err(app::StartError::Timeout(t)) => return Err(TestKitError::StartTimeout(t)),
            Err(app::StartError::Stopped(e)) => return Err(e.into()),
            Err(e) => return Err(TestKitError::Stopped(e.to_string())),
        };
        Ok(TestHost {
            sim,
            config_path,
            queues,
            host: Some(host),
            _dir: dir,
        })
    }

    /// The simulated platform (for faults, stats and raw messages).
    pub fn sim(&self) -> &Sim {
        &self.sim
    }

    /// The app.config the host was started with.
    pub fn config_path(&self) -> &std::path::Path {
        &self.config_path
    }

    /// The queues the host subscribed to.
    pub fn queues(&self) -> &[String] {
        &self.queues
    }

    /// Invokes a function through the simulated platform.
    pub async fn invoke(
        &self,
        function: &str,
        inputs: serde_json::Value,
    ) -> Result<Invocation, TestKitError> {
        Ok(self.sim.invoke(function, inputs).await?)
    }

    /// Invokes a function and waits (20 s at most) for its final reply.
    pub async fn call(
        &self,
        function: &str,
        inputs: serde_json::Value,
    ) -> Result<Reply, TestKitError> {
        let invocation = self.invoke(function, inputs).await?;
        Ok(invocation.final_reply(Duration::from_secs(20)).await?)
    }

    /// Stops the host gracefully and returns how it ended.
    pub async fn stop(mut self) -> Result<(), TestKitError> {
        match self.host.take() {
            Some(host) => Ok(host.stop().await?),
            None => Ok(()),
        }
    }
}

/// Waits until `check` gives `Some`, trying every 20 ms for at most `timeout`; `what` names the
/// awaited state in the error.
pub async fn wait_until<T, F, Fut>(
    what: &str,
    timeout: Duration,
    mut check: F,
) -> Result<T, TestKitError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return Ok(v);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(TestKitError::Timeout(timeout, what.to_string()));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
