//! Notification templates: rendering in both languages, strict placeholders, file checks.

use std::path::Path;

use plugins::template::{Text, parse_template};
use serde_json::json;

#[test]
fn renders_both_languages_with_nested_fields() {
    let t = parse_template(
        Path::new("templates/apt_confirm.yaml"),
        "template: apt_confirm\nchannel: sms\nzh: \"{{customer.name}}您好，您的車 {{plate_no}} 已預約於 {{ at }}。\"\nen: \"Dear {{customer.name}}, {{plate_no}} is booked for {{at}} ({{slots}} slots).\"\n",
    )
    .unwrap();
    let data = json!({ "customer": { "name": "王先生" }, "plate_no": "粤A12345", "at": "3月2日 09:00", "slots": 2 });
    let rendered = plugins::notify::render(&t, &data).unwrap();
    assert_eq!(rendered.zh, "王先生您好，您的車 粤A12345 已預約於 3月2日 09:00。");
    assert_eq!(rendered.en, "Dear 王先生, 粤A12345 is booked for 3月2日 09:00 (2 slots).");
}

#[test]
fn a_missing_or_null_variable_is_refused_with_its_name() {
    let text = Text::parse("Dear {{customer.name}}, see you at {{at}}").unwrap();
    let err = text.render(&json!({ "customer": { "name": "Li" } })).unwrap_err();
    assert_eq!(err.name, "at");
    assert_eq!(err.to_string(), "the template needs `at`, which is not in the notification's data");
    let null = text.render(&json!({ "customer": { "name": null }, "at": "9:00" })).unwrap_err();
    assert_eq!(null.name, "customer.name");
}

#[test]
fn a_broken_template_file_is_reported_at_file_line_col() {
    let source = "template: apt_reminder\nchannel: sms\nzh: \"明天 {{at 見\"\nen: \"Tomorrow {{at}}\"\nextra: 1\n";
    let errors = parse_template(Path::new("templates/apt_confirm.yaml"), source).unwrap_err();
    let rendered: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        rendered,
        [
            "templates/apt_confirm.yaml:5:1: error[P0030]: unknown field `extra`, expected one of `template`, `channel`, `subject`, `zh`, `en`"
        ]
    );

    let source = "template: apt_reminder\nchannel: sms\nzh: \"明天 {{at 見\"\nen: \"Tomorrow {{a-t}}\"\n";
    let errors = parse_template(Path::new("templates/apt_confirm.yaml"), source).unwrap_err();
    let rendered: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        rendered,
        [
            "templates/apt_confirm.yaml:1:11: error[P0030]: the template is called `apt_reminder` but its file is `apt_confirm.yaml`; the two must match",
            "templates/apt_confirm.yaml:3:5: error[P0030]: `{{` is not closed with `}}`",
            "templates/apt_confirm.yaml:4:5: error[P0030]: `{{a-t}}` is not a placeholder; write a name such as `{{plate_no}}` or `{{customer.name}}`",
        ]
    );
}

#[test]
fn an_installed_archives_templates_are_installed_from_memory_and_a_broken_one_refuses_all() {
    let registry = plugins::Registry::offline();
    let root = Path::new("visits-2.0.0.sopack");
    let good = (
        "templates/apt_confirm.yaml".to_string(),
        "template: apt_confirm\nchannel: sms\nzh: \"{{name}}您好\"\nen: \"Dear {{name}}\"\n".to_string(),
    );
    let other_file = ("visit.yaml".to_string(), "process: visit\n".to_string());
    let n = registry.install_templates_from("visits", root, &[good.clone(), other_file]).unwrap();
    assert_eq!(n, 1);
    assert!(registry.templates().read().unwrap().get("apt_confirm").is_some());

    let broken = ("templates/apt_reminder.yaml".to_string(), "template: apt_reminder\nzh: \"{{\"\n".to_string());
    let err = registry.install_templates_from("visits", root, &[good, broken]).unwrap_err();
    assert!(err.to_string().contains("visits-2.0.0.sopack/templates/apt_reminder.yaml"), "{err}");
}
