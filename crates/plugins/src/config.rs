//! The dealer's plugin configuration: which capabilities each plugin is granted, where
//! notifications go (webhook, SMS gateway, SMTP), the `http` action's allow-list, secrets, and
//! the external task topics.
//!
//! The defaults work offline: nothing is granted, no channel but `log` is configured, no host
//! is allowed. Secrets live here (or in the environment, named here), never in a pack: a pack is
//! shipped between the brand and dealers, the configuration stays at the dealer.
//!
//! This module reads no environment itself: [`Secrets::resolve`] takes a lookup function, which
//! the binary backs with the process environment.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path as FsPath;

use model::Code;
use plugin_api::Capability;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Error;
use crate::files::YamlFile;

/// The plugin configuration, as written in its YAML file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PluginsConfig {
    /// The built-in `http` action.
    pub http: HttpConfig,
    /// The built-in `notify` action's channels.
    pub notify: NotifyConfig,
    /// Secrets by name.
    pub secrets: BTreeMap<String, SecretSource>,
    /// Capabilities granted to each script plugin, by plugin name.
    pub plugins: BTreeMap<String, PluginGrant>,
    /// External task topics served by workers, by topic (`dms_sync` for `action: topic:dms_sync`).
    pub topics: BTreeMap<String, TopicConfig>,
    /// How the runtime dispatches actions.
    pub dispatch: DispatchConfig,
}

/// The `http` action and every HTTP call a plugin or channel makes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Hosts the `http` action may call: `dms.example.com` or `*.example.com`.
    pub allow: Vec<String>,
    /// Secrets the `http` action may send in a header.
    pub secrets: Vec<String>,
    /// How long one call may take, in seconds.
    pub timeout_secs: u64,
    /// The largest response body read, in bytes; a larger one is a permanent failure.
    pub max_response_bytes: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig { allow: Vec::new(), secrets: Vec::new(), timeout_secs: 10, max_response_bytes: 1 << 20 }
    }
}

/// Where `notify` delivers. A channel that is not configured falls back to `log`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    /// The language delivered when the input names none: `zh` (default) or `en`.
    pub default_lang: Option<String>,
    /// The `webhook` channel: the rendered message is POSTed as JSON.
    pub webhook: Option<WebhookConfig>,
    /// The `sms` channel: an HTTP gateway.
    pub sms: Option<SmsConfig>,
    /// The `email` channel: an SMTP server.
    pub smtp: Option<SmtpConfig>,
}

/// A webhook target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// The URL; its host must be in `http.allow`.
    pub url: String,
    /// A header carrying a secret (e.g. a bearer token).
    #[serde(default)]
    pub secret_header: Option<SecretHeader>,
}

/// An SMS gateway reached over HTTP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsConfig {
    /// The gateway's URL; its host must be in `http.allow`.
    pub url: String,
    /// The JSON body sent per recipient; texts may use `{{to}}`, `{{text}}` and `{{lang}}`.
    #[serde(default = "default_sms_body")]
    pub body: Value,
    /// A header carrying the gateway's key.
    #[serde(default)]
    pub secret_header: Option<SecretHeader>,
}

fn default_sms_body() -> Value {
    serde_json::json!({ "to": "{{to}}", "text": "{{text}}" })
}

/// An SMTP server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// The server's host name.
    pub host: String,
    /// The port (default 587 with STARTTLS, 465 with TLS).
    #[serde(default)]
    pub port: Option<u16>,
    /// How the connection is secured.
    #[serde(default)]
    pub tls: SmtpTls,
    /// The user to log in as, if any.
    #[serde(default)]
    pub username: Option<String>,
    /// The secret holding the password.
    #[serde(default)]
    pub password_secret: Option<String>,
    /// The sender, e.g. `Service <service@dealer.example>`.
    pub from: String,
}

/// How an SMTP connection is secured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS (required).
    #[default]
    Starttls,
    /// TLS from the first byte.
    Tls,
    /// No encryption: only for a relay on the same host.
    None,
}

/// A header whose value is a secret from the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretHeader {
    /// The header's name, e.g. `Authorization`.
    pub name: String,
    /// The secret's name in the configuration.
    pub secret: String,
    /// Text put before the secret, e.g. `"Bearer "`.
    #[serde(default)]
    pub prefix: Option<String>,
}

/// Where a secret's value comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum SecretSource {
    /// An environment variable (read by the binary when the configuration is loaded).
    Env(String),
    /// The value itself; keep such a file readable by the engine only.
    Value(String),
}

/// What one script plugin is granted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PluginGrant {
    /// The capabilities granted; a plugin gets those it declares *and* is granted.
    pub grant: Vec<Capability>,
    /// Dealer-specific values the plugin's actions read as `context.settings` (a DMS's base
    /// URL, a dealer code). Not for secrets: those are granted by name.
    pub settings: BTreeMap<String, Value>,
}

/// An external task topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicConfig {
    /// What the workers of this topic do.
    #[serde(default)]
    pub description: String,
    /// JSON Schema of the job's input (default: any object).
    #[serde(default = "any_object")]
    pub input: Value,
    /// JSON Schema of the output a worker completes the job with (default: any object).
    #[serde(default = "any_object")]
    pub output: Value,
}

fn any_object() -> Value {
    serde_json::json!({ "type": "object" })
}

/// How the runtime's outbox dispatcher calls actions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DispatchConfig {
    /// The longest one invocation may take before it counts as a retryable failure, in seconds.
    pub timeout_secs: u64,
    /// How many invocations run at once, over all instances.
    pub max_concurrent: usize,
}

impl Default for DispatchConfig {
    fn default() -> Self {
        DispatchConfig { timeout_secs: 30, max_concurrent: 16 }
    }
}

impl PluginsConfig {
    /// Reads a configuration file's text; every problem is reported at `file:line:col`.
    pub fn parse(path: &FsPath, text: &str) -> Result<PluginsConfig, Error> {
        let file = YamlFile::parse(path, text).map_err(|d| Error::Invalid(vec![d]))?;
        let config: PluginsConfig = file.typed(Code::BadPluginConfig).map_err(|d| Error::Invalid(vec![d]))?;
        let mut problems = Vec::new();
        let root = model::yaml::Path::root();
        for (idx, host) in config.http.allow.iter().enumerate() {
            if let Err(message) = HostPattern::parse(host) {
                problems.push(file.at(Code::BadPluginConfig, &root.key("http").key("allow").index(idx), message));
            }
        }
        let mut named_secrets: Vec<(model::yaml::Path, &str)> = Vec::new();
        for (idx, name) in config.http.secrets.iter().enumerate() {
            named_secrets.push((root.key("http").key("secrets").index(idx), name));
        }
        let notify = root.key("notify");
        if let Some(hook) = &config.notify.webhook {
            check_url(&file, &config, &notify.key("webhook").key("url"), &hook.url, &mut problems);
            if let Some(h) = &hook.secret_header {
                named_secrets.push((notify.key("webhook").key("secret_header").key("secret"), &h.secret));
            }
        }
        if let Some(sms) = &config.notify.sms {
            check_url(&file, &config, &notify.key("sms").key("url"), &sms.url, &mut problems);
            if let Some(h) = &sms.secret_header {
                named_secrets.push((notify.key("sms").key("secret_header").key("secret"), &h.secret));
            }
        }
        if let Some(smtp) = &config.notify.smtp
            && let Some(secret) = &smtp.password_secret
        {
            named_secrets.push((notify.key("smtp").key("password_secret"), secret));
        }
        for (plugin, grant) in &config.plugins {
            for (idx, capability) in grant.grant.iter().enumerate() {
                let at = root.key("plugins").key(plugin.clone()).key("grant").index(idx);
                match capability {
                    Capability::Http { host } => {
                        if let Err(message) = HostPattern::parse(host) {
                            problems.push(file.at(Code::BadPluginConfig, &at.key("host"), message));
                        }
                    }
                    Capability::Secret { name } if !config.secrets.contains_key(name) => {
                        problems.push(file.at(
                            Code::BadPluginConfig,
                            &at.key("name"),
                            format!("the secret `{name}` is granted but not defined under `secrets`"),
                        ));
                    }
                    _ => {}
                }
            }
        }
        for (path, name) in named_secrets {
            if !config.secrets.contains_key(name) {
                problems.push(file.at(
                    Code::BadPluginConfig,
                    &path,
                    format!("there is no secret `{name}` under `secrets`"),
                ));
            }
        }
        if problems.is_empty() { Ok(config) } else { Err(Error::Invalid(problems)) }
    }

    /// The `http` action's allow-list, parsed (patterns were checked by [`PluginsConfig::parse`];
    /// a wrong one built in code is skipped, never widened).
    pub fn http_allow(&self) -> Vec<HostPattern> {
        self.http.allow.iter().filter_map(|h| HostPattern::parse(h).ok()).collect()
    }

    /// The capabilities granted to a script plugin.
    pub fn granted(&self, plugin: &str) -> &[Capability] {
        self.plugins.get(plugin).map_or(&[], |g| g.grant.as_slice())
    }

    /// A script plugin's settings, as the record its actions see.
    pub fn settings(&self, plugin: &str) -> Value {
        let settings = self.plugins.get(plugin).map(|g| g.settings.clone()).unwrap_or_default();
        Value::Object(settings.into_iter().collect())
    }
}

fn check_url(
    file: &YamlFile,
    config: &PluginsConfig,
    at: &model::yaml::Path,
    url: &str,
    problems: &mut Vec<model::Diagnostic>,
) {
    match reqwest::Url::parse(url) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => {
            let host = parsed.host_str().unwrap_or_default();
            if !config.http_allow().iter().any(|p| p.matches(host)) {
                problems.push(file.at(
                    Code::BadPluginConfig,
                    at,
                    format!("the host `{host}` is not in `http.allow`; add it there to send to it"),
                ));
            }
        }
        _ => problems.push(file.at(Code::BadPluginConfig, at, format!("`{url}` is not an http(s) URL"))),
    }
}

/// A host or a wildcard of hosts: `dms.example.com`, `*.example.com`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct HostPattern {
    /// The host, or the suffix after `*.`, in lower case.
    host: String,
    /// Whether it is `*.host`: any host below, not the host itself.
    wildcard: bool,
}

impl HostPattern {
    /// Parses a pattern; only a leading `*.` is a wildcard.
    pub fn parse(text: &str) -> Result<HostPattern, String> {
        let lower = text.trim().to_ascii_lowercase();
        let (host, wildcard) = match lower.strip_prefix("*.") {
            Some(rest) => (rest.to_owned(), true),
            None => (lower, false),
        };
        let valid = !host.is_empty()
            && host.split('.').all(|label| {
                !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == ':')
            })
            && !host.contains('*');
        if valid {
            Ok(HostPattern { host, wildcard })
        } else {
            Err(format!("`{text}` is not a host name or a pattern like `*.example.com`"))
        }
    }

    /// Whether `host` is covered.
    pub fn matches(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        if self.wildcard {
            host.strip_suffix(&self.host).is_some_and(|head| head.ends_with('.') && head.len() > 1)
        } else {
            host == self.host
        }
    }

    /// Whether every host this pattern covers is also covered by `other`.
    pub fn within(&self, other: &HostPattern) -> bool {
        match (self.wildcard, other.wildcard) {
            (false, _) => other.matches(&self.host),
            (true, true) => self.host == other.host || other.matches(&self.host),
            (true, false) => false,
        }
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.wildcard { write!(f, "*.{}", self.host) } else { f.write_str(&self.host) }
    }
}

/// Secret values by name. Its `Debug` shows the names only.
#[derive(Clone, Default)]
pub struct Secrets {
    values: BTreeMap<String, String>,
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secrets").field("names", &self.values.keys().collect::<Vec<_>>()).finish()
    }
}

/// A secret named by the configuration whose environment variable is not set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the secret `{secret}` is to be read from the environment variable `{variable}`, which is not set")]
pub struct MissingSecret {
    /// The secret.
    pub secret: String,
    /// The variable.
    pub variable: String,
}

impl Secrets {
    /// Resolves the configuration's secrets; `env` looks up an environment variable.
    pub fn resolve(config: &PluginsConfig, env: impl Fn(&str) -> Option<String>) -> Result<Secrets, MissingSecret> {
        let mut values = BTreeMap::new();
        for (name, source) in &config.secrets {
            let value = match source {
                SecretSource::Value(v) => v.clone(),
                SecretSource::Env(variable) => {
                    env(variable).ok_or_else(|| MissingSecret { secret: name.clone(), variable: variable.clone() })?
                }
            };
            values.insert(name.clone(), value);
        }
        Ok(Secrets { values })
    }

    /// Secrets given directly (for tests and embedding).
    pub fn from_values(values: impl IntoIterator<Item = (String, String)>) -> Secrets {
        Secrets { values: values.into_iter().collect() }
    }

    /// A secret's value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// The names defined.
    pub fn names(&self) -> BTreeSet<&str> {
        self.values.keys().map(String::as_str).collect()
    }
}
