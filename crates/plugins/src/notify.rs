//! The built-in `notify` action: renders a template in Chinese and English with the
//! notification's data and delivers it on a channel.
//!
//! Both languages are always rendered and both land in the output, so the audit trail shows
//! exactly what was (or would have been) sent in either language; the one delivered is `lang`.
//! `log` is always available. `webhook`, `sms` and `email` deliver where the configuration sets
//! them up; where it does not, the message falls back to `log` and the output says so
//! (`delivered: false` and a `note`), so a dealer without an SMS gateway still runs the
//! standard pack and sees what would have gone out.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use plugin_api::{Action, ActionInfo, BoxFuture, Capability, Error, Invocation};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::config::{NotifyConfig, Secrets, SmtpConfig, SmtpTls};
use crate::http::{HttpCaller, HttpRequest};
use crate::template::{Channel, Template, Templates, Text};

/// The `notify` action.
#[derive(Debug)]
pub struct Notify {
    info: ActionInfo,
    templates: Arc<RwLock<Templates>>,
    config: NotifyConfig,
    http: HttpCaller,
    secrets: Arc<Secrets>,
    timeout: Duration,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    template: String,
    to: Recipients,
    #[serde(default)]
    channel: Option<Channel>,
    #[serde(default)]
    lang: Option<String>,
    #[serde(default)]
    data: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Recipients {
    One(String),
    Many(Vec<String>),
}

/// A message rendered in both languages.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// The Chinese text.
    pub zh: String,
    /// The English text.
    pub en: String,
    /// The subject in both languages, when the template has one.
    pub subject: Option<(String, String)>,
}

impl Rendered {
    fn text(&self, lang: &str) -> &str {
        if lang == "en" { &self.en } else { &self.zh }
    }

    fn subject(&self, lang: &str) -> Option<&str> {
        self.subject.as_ref().map(|(zh, en)| if lang == "en" { en.as_str() } else { zh.as_str() })
    }
}

/// Renders a template with `data`: both languages, and the subject if any. The first missing
/// placeholder is the error.
pub fn render(template: &Template, data: &Value) -> Result<Rendered, crate::template::MissingVariable> {
    let subject = match &template.subject {
        Some((zh, en)) => Some((zh.render(data)?, en.render(data)?)),
        None => None,
    };
    Ok(Rendered { zh: template.zh.render(data)?, en: template.en.render(data)?, subject })
}

impl Notify {
    /// The action, with its templates (shared with whoever installs packs), the channels'
    /// configuration, an HTTP caller for `webhook` and `sms`, and the secrets for SMTP.
    pub fn new(
        templates: Arc<RwLock<Templates>>,
        config: NotifyConfig,
        http: HttpCaller,
        secrets: Arc<Secrets>,
        timeout: Duration,
    ) -> Notify {
        let mut capabilities = Vec::new();
        for url in [config.webhook.as_ref().map(|w| &w.url), config.sms.as_ref().map(|s| &s.url)].into_iter().flatten()
        {
            if let Ok(parsed) = reqwest::Url::parse(url) {
                capabilities.push(Capability::Http { host: parsed.host_str().unwrap_or_default().to_owned() });
            }
        }
        if config.sms.is_some() {
            capabilities.push(Capability::Sms);
        }
        if config.smtp.is_some() {
            capabilities.push(Capability::Smtp);
        }
        Notify {
            info: ActionInfo {
                name: "notify".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                description:
                    "Renders a zh/en template with the given data and delivers it (log, webhook, SMS, e-mail).".into(),
                input_schema: input_schema(),
                output_schema: output_schema(),
                capabilities,
            },
            templates,
            config,
            http,
            secrets,
            timeout,
        }
    }

    /// The templates this action renders, to install packs' templates into.
    pub fn templates(&self) -> &Arc<RwLock<Templates>> {
        &self.templates
    }

    async fn run(&self, invocation: Invocation) -> Result<Value, Error> {
        let input: Input = serde_json::from_value(invocation.input)
            .map_err(|e| Error::Permanent(format!("the input is not a notification: {e}")))?;
        let template = {
            // A poisoned lock means a pack install panicked; the templates are still readable.
            let templates = self.templates.read().unwrap_or_else(std::sync::PoisonError::into_inner);
            templates.get(&input.template).cloned()
        };
        let Some(template) = template else {
            return Err(Error::Permanent(format!("there is no template `{}` in the installed packs", input.template)));
        };
        let data = input.data.unwrap_or_else(|| Value::Object(Map::new()));
        let rendered =
            render(&template, &data).map_err(|e| Error::Permanent(format!("template `{}`: {e}", template.name)))?;
        let to = match input.to {
            Recipients::One(one) => vec![one],
            Recipients::Many(many) => many,
        };
        let lang = input.lang.or_else(|| self.config.default_lang.clone()).unwrap_or_else(|| "zh".into());
        let channel = input.channel.unwrap_or(template.channel);
        let key = &invocation.idempotency_key;

        let delivery = match channel {
            Channel::Log => Ok(Delivery::logged(key)),
            Channel::Webhook => match &self.config.webhook {
                None => Ok(Delivery::fallback(key, "no webhook is configured; the message was logged instead")),
                Some(hook) => {
                    let body = json!({
                        "template": template.name, "to": to, "lang": lang, "text": rendered.text(&lang),
                        "zh": rendered.zh, "en": rendered.en, "subject": rendered.subject(&lang),
                        "instance": invocation.instance, "dealer": invocation.dealer, "job": invocation.job,
                    });
                    let request = HttpRequest {
                        method: "POST".into(),
                        url: hook.url.clone(),
                        headers: Default::default(),
                        body: Some(body),
                        secret_header: hook.secret_header.clone(),
                    };
                    let response = self.http.call(&request, Some(&invocation.job)).await?;
                    let id = response.body.get("id").and_then(Value::as_str).map(str::to_owned);
                    Ok(Delivery::sent(id.unwrap_or_else(|| format!("webhook:{key}"))))
                }
            },
            Channel::Sms => match &self.config.sms {
                None => Ok(Delivery::fallback(key, "no SMS gateway is configured; the message was logged instead")),
                Some(sms) => {
                    let mut ids = Vec::new();
                    for (idx, phone) in to.iter().enumerate() {
                        if !is_phone(phone) {
                            return Err(Error::Permanent(format!("`{phone}` is not a phone number")));
                        }
                        let vars = json!({ "to": phone, "text": rendered.text(&lang), "lang": lang });
                        let body = fill(&sms.body, &vars)?;
                        let request = HttpRequest {
                            method: "POST".into(),
                            url: sms.url.clone(),
                            headers: Default::default(),
                            body: Some(body),
                            secret_header: sms.secret_header.clone(),
                        };
                        // Keyed by job and recipient, so a gateway that honours the key sends
                        // each text once even when a later recipient fails and the job is retried.
                        let response = self.http.call(&request, Some(&format!("{}:{idx}", invocation.job))).await?;
                        let id = response.body.get("id").and_then(Value::as_str).map(str::to_owned);
                        ids.push(id.unwrap_or_else(|| format!("sms:{key}:{idx}")));
                    }
                    Ok(Delivery::sent(ids.join(",")))
                }
            },
            Channel::Email => match &self.config.smtp {
                None => Ok(Delivery::fallback(key, "no SMTP server is configured; the message was logged instead")),
                Some(smtp) => self.send_email(smtp, &to, &template, &rendered, &lang, key).await,
            },
        }?;

        let mut out = json!({
            "channel": if delivery.fell_back { "log" } else { channel.as_str() },
            "to": to,
            "lang": lang,
            "zh": rendered.zh,
            "en": rendered.en,
            "delivered": delivery.delivered,
            "delivery_id": delivery.id,
        });
        if let (Some((zh, en)), Some(obj)) = (&rendered.subject, out.as_object_mut()) {
            obj.insert("subject".into(), json!({ "zh": zh, "en": en }));
        }
        if let (Some(note), Some(obj)) = (delivery.note, out.as_object_mut()) {
            obj.insert("note".into(), Value::String(note));
        }
        Ok(out)
    }

    async fn send_email(
        &self,
        smtp: &SmtpConfig,
        to: &[String],
        template: &Template,
        rendered: &Rendered,
        lang: &str,
        key: &str,
    ) -> Result<Delivery, Error> {
        let from: Mailbox =
            smtp.from.parse().map_err(|e| Error::Permanent(format!("the sender `{}` is not valid: {e}", smtp.from)))?;
        let mut builder = Message::builder()
            .from(from)
            .subject(rendered.subject(lang).unwrap_or(template.name.as_str()))
            .header(ContentType::TEXT_PLAIN);
        for address in to {
            let mailbox: Mailbox =
                address.parse().map_err(|_| Error::Permanent(format!("`{address}` is not an e-mail address")))?;
            builder = builder.to(mailbox);
        }
        let message = builder
            .body(rendered.text(lang).to_owned())
            .map_err(|e| Error::Permanent(format!("the e-mail cannot be built: {e}")))?;

        let relay = match smtp.tls {
            SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&smtp.host),
            SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&smtp.host),
            SmtpTls::None => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host)),
        }
        .map_err(|e| Error::Permanent(format!("the SMTP server `{}` cannot be used: {e}", smtp.host)))?;
        let mut relay = relay.timeout(Some(self.timeout));
        if let Some(port) = smtp.port {
            relay = relay.port(port);
        }
        if let Some(user) = &smtp.username {
            let password = smtp.password_secret.as_deref().and_then(|s| self.secrets.get(s)).unwrap_or_default();
            relay = relay.credentials(Credentials::new(user.clone(), password.to_owned()));
        }
        match relay.build().send(message).await {
            Ok(_) => Ok(Delivery::sent(format!("email:{key}"))),
            Err(e) if e.is_permanent() => Err(Error::Permanent(format!("the SMTP server refused the e-mail: {e}"))),
            Err(e) => Err(Error::Retryable(format!("the e-mail could not be sent: {e}"))),
        }
    }
}

impl Action for Notify {
    fn info(&self) -> &ActionInfo {
        &self.info
    }

    fn invoke(&self, invocation: Invocation) -> BoxFuture<'_, Result<Value, Error>> {
        Box::pin(self.run(invocation))
    }
}

struct Delivery {
    delivered: bool,
    fell_back: bool,
    id: String,
    note: Option<String>,
}

impl Delivery {
    fn logged(key: &str) -> Delivery {
        Delivery { delivered: true, fell_back: false, id: format!("log:{key}"), note: None }
    }

    fn fallback(key: &str, note: &str) -> Delivery {
        Delivery { delivered: false, fell_back: true, id: format!("log:{key}"), note: Some(note.to_owned()) }
    }

    fn sent(id: String) -> Delivery {
        Delivery { delivered: true, fell_back: false, id, note: None }
    }
}

/// Whether `text` looks like a phone number: an optional `+`, then digits, spaces and hyphens,
/// with at least six digits.
fn is_phone(text: &str) -> bool {
    let rest = text.trim().strip_prefix('+').unwrap_or(text.trim());
    rest.chars().all(|c| c.is_ascii_digit() || c == ' ' || c == '-')
        && rest.chars().filter(char::is_ascii_digit).count() >= 6
}

/// Fills `{{var}}` in every text of a JSON value (the SMS gateway's body).
fn fill(value: &Value, vars: &Value) -> Result<Value, Error> {
    Ok(match value {
        Value::String(s) => {
            let text = Text::parse(s).map_err(|(m, _)| Error::Permanent(format!("the SMS body template: {m}")))?;
            Value::String(text.render(vars).map_err(|e| Error::Permanent(format!("the SMS body template: {e}")))?)
        }
        Value::Array(items) => Value::Array(items.iter().map(|i| fill(i, vars)).collect::<Result<_, _>>()?),
        Value::Object(fields) => {
            let mut out = Map::new();
            for (k, v) in fields {
                out.insert(k.clone(), fill(v, vars)?);
            }
            Value::Object(out)
        }
        other => other.clone(),
    })
}

fn input_schema() -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["template", "to"],
        "properties": {
            "template": { "type": "string", "minLength": 1 },
            "to": {
                "description": "A phone number, an e-mail address, a role id or a user id, or a list of them.",
                "oneOf": [
                    { "type": "string", "minLength": 1 },
                    { "type": "array", "minItems": 1, "items": { "type": "string", "minLength": 1 } }
                ]
            },
            "channel": { "type": "string", "enum": ["sms", "email", "webhook", "log"] },
            "lang": { "type": "string", "enum": ["zh", "en"] },
            "data": { "type": "object" }
        }
    })
}

fn output_schema() -> Value {
    json!({
        "type": "object",
        "required": ["channel", "to", "zh", "en", "delivered", "delivery_id"],
        "properties": {
            "channel": { "type": "string", "enum": ["sms", "email", "webhook", "log"] },
            "to": { "type": "array", "items": { "type": "string" } },
            "lang": { "type": "string" },
            "zh": { "type": "string" },
            "en": { "type": "string" },
            "subject": { "type": "object" },
            "delivered": { "type": "boolean" },
            "delivery_id": { "type": "string" },
            "note": { "type": "string" }
        }
    })
}
