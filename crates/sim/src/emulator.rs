//! The registry of emulators: stand-ins for the outside services integrations call, each in its
//! own crate beside its integration.
//!
//! The simulated platform knows no integration. An emulator crate registers itself once with
//! [`register_emulator!`](crate::register_emulator); whoever runs the platform for people
//! (`host sim`, `host demo`) iterates [`registered`], starts the emulators of the components it
//! links, and appends their [`Emulator::app_config`] sections to the host's app.config.
//!
//! ```
//! use soar_sim::emulator::{Emulator, EmulatorRegistration, StartFuture};
//!
//! struct Example;
//!
//! impl Emulator for Example {
//!     fn url(&self) -> String {
//!         "http://127.0.0.1:8000/".into()
//!     }
//!     fn app_config(&self) -> String {
//!         format!("[fn_example]\nurl = {}\n", self.url())
//!     }
//!     fn summary(&self) -> String {
//!         "Example:\n  (nothing)\n".into()
//!     }
//! }
//!
//! fn start() -> StartFuture {
//!     Box::pin(async { Ok(Box::new(Example) as Box<dyn Emulator>) })
//! }
//!
//! soar_sim::register_emulator!(EmulatorRegistration {
//!     name: "Example",
//!     component: "fn_example",
//!     start,
//! });
//!
//! fn main() {
//!     let names: Vec<_> = soar_sim::emulator::registered().iter().map(|r| r.name).collect();
//!     assert_eq!(names, ["Example"]);
//! }
//! ```

use std::future::Future;
use std::pin::Pin;

use crate::SimError;

/// A running emulator of an outside service.
pub trait Emulator: Send + Sync {
    /// Where it serves, for a banner (e.g. `http://127.0.0.1:PORT/api/`).
    fn url(&self) -> String;
    /// app.config sections (INI text, one or more sections) that point its component at it.
    fn app_config(&self) -> String;
    /// What a person would see in the service now, with its own heading line (e.g. "Chat, as a
    /// person sees it:" then the transcript of its channels).
    fn summary(&self) -> String;
}

/// What [`EmulatorRegistration::start`] returns: the started emulator, or why it did not start.
pub type StartFuture = Pin<Box<dyn Future<Output = Result<Box<dyn Emulator>, SimError>> + Send>>;

/// An emulator crate's registration.
#[derive(Debug)]
pub struct EmulatorRegistration {
    /// The service's name for people ("Chat").
    pub name: &'static str,
    /// The component it stands in for the outside service of ("fn_chat"): the host starts it
    /// only when that component is linked.
    pub component: &'static str,
    /// Starts it on a free 127.0.0.1 port with its seed data.
    pub start: fn() -> StartFuture,
}

inventory::collect!(EmulatorRegistration);

/// Every linked emulator, sorted by name.
pub fn registered() -> Vec<&'static EmulatorRegistration> {
    let mut all: Vec<&'static EmulatorRegistration> = inventory::iter::<EmulatorRegistration>
        .into_iter()
        .collect();
    all.sort_by(|a, b| a.name.cmp(b.name).then(a.component.cmp(b.component)));
    all
}

/// Registers an emulator (once per emulator crate), with an [`EmulatorRegistration`].
#[macro_export]
macro_rules! register_emulator {
    ($r:expr) => {
        $crate::inventory::submit! { $r }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake(&'static str);

    impl Emulator for Fake {
        fn url(&self) -> String {
            format!("http://127.0.0.1:1/{}", self.0)
        }
        fn app_config(&self) -> String {
            format!("[{}]\nurl = {}\n", self.0, self.url())
        }
        fn summary(&self) -> String {
            format!("{}:\n  (nothing)\n", self.0)
        }
    }

    fn start_zeta() -> StartFuture {
        Box::pin(async { Ok(Box::new(Fake("zeta")) as Box<dyn Emulator>) })
    }

    fn start_alpha() -> StartFuture {
        Box::pin(async { Ok(Box::new(Fake("alpha")) as Box<dyn Emulator>) })
    }

    // Submitted in this order on purpose: the registry sorts them.
    crate::register_emulator!(EmulatorRegistration {
        name: "Zeta",
        component: "fn_zeta",
        start: start_zeta,
    });
    crate::register_emulator!(EmulatorRegistration {
        name: "Alpha",
        component: "fn_alpha",
        start: start_alpha,
    });

    #[tokio::test]
    async fn registered_emulators_are_sorted_by_name_and_start() {
        let all = registered();
        let names: Vec<&str> = all.iter().map(|r| r.name).collect();
        assert_eq!(names, ["Alpha", "Zeta"]);
        assert_eq!(all[0].component, "fn_alpha");
        let emu = (all[0].start)().await.unwrap();
        assert_eq!(
            emu.app_config(),
            "[alpha]\nurl = http://127.0.0.1:1/alpha\n"
        );
        assert!(emu.summary().starts_with("alpha:\n"));
    }
}
