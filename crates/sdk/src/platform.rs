//! The platform's REST API as a handler sees it: [`Rest`], the org-relative calls a function
//! crate makes (`get("/incidents/5")`). The engine backs it with its logged-in REST client; the
//! unit test kit with a recording fake.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde_json::Value;
pub use soar_rest::RestError;

/// A boxed, sendable future (what the SDK's object-safe traits return).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// An HTTP method of a platform call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }
}

/// What backs [`Rest`]: one call, org-relative `path` (`/incidents/5`), JSON in and out
/// (`Value::Null` for an empty answer).
pub trait PlatformApi: Send + Sync {
    fn call<'a>(
        &'a self,
        method: Method,
        path: &'a str,
        body: Option<&'a Value>,
    ) -> BoxFuture<'a, Result<Value, RestError>>;
}

impl PlatformApi for soar_rest::RestClient {
    fn call<'a>(
        &'a self,
        method: Method,
        path: &'a str,
        body: Option<&'a Value>,
    ) -> BoxFuture<'a, Result<Value, RestError>> {
        let empty = Value::Null;
        Box::pin(async move {
            let body = body.unwrap_or(&empty);
            match method {
                // A 404 is an answer, not a fault: retrying it only holds the handler up.
                Method::Get => self.get_skip(path, &[404]).await,
                Method::Post => self.post(path, body).await,
                Method::Put => self.put(path, body).await,
                Method::Patch => self.patch(path, body).await,
                Method::Delete => Ok(self.delete(path).await?.unwrap_or(Value::Null)),
            }
        })
    }
}

/// The platform's REST API, logged in to the configured org. Cheap to clone.
#[derive(Clone)]
pub struct Rest(Arc<dyn PlatformApi>);

impl std::fmt::Debug for Rest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Rest")
    }
}

impl Rest {
    pub fn new(api: Arc<dyn PlatformApi>) -> Self {
        Rest(api)
    }

    /// `GET` an org-relative path, e.g. `/incidents/5`. Faults are retried as the `[resilient]`
    /// retry settings say; HTTP 404 (the object does not exist, e.g. was deleted) is returned
    /// at once.
    pub async fn get(&self, path: &str) -> Result<Value, RestError> {
        self.0.call(Method::Get, path, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Result<Value, RestError> {
        self.0.call(Method::Post, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Result<Value, RestError> {
        self.0.call(Method::Put, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> Result<Value, RestError> {
        self.0.call(Method::Patch, path, Some(body)).await
    }

    /// `DELETE`; the answer (`Value::Null` when empty).
    pub async fn delete(&self, path: &str) -> Result<Value, RestError> {
        self.0.call(Method::Delete, path, None).await
    }
}
