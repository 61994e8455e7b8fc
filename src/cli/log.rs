//! The JSON log format of `--log-format json`: one object a line with
//! `level`, `msg` and `time`, the shape runc writes and container engines
//! read back. containerd's shim, for one, takes the `msg` of the last
//! `error` line as the reason a runtime command failed.

use std::fmt::Write as _;

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Formats each event as `{"level":"error","msg":"...","time":"..."}`; the
/// event's other fields follow the message as `name=value`.
pub struct RuncJson;

/// Gathers an event's message and its other fields, in order.
#[derive(Default)]
struct Message {
    text: String,
    fields: String,
}

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.text, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.text.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={value}", field.name());
        }
    }
}

impl<S, N> FormatEvent<S, N> for RuncJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let mut message = Message::default();
        event.record(&mut message);
        writeln!(writer, "{}", line(event.metadata().level(), &message))
    }
}

fn line(level: &tracing::Level, message: &Message) -> String {
    serde_json::json!({
        "level": level.as_str().to_ascii_lowercase(),
        "msg": format!("{}{}", message.text, message.fields),
        "time": crate::container::oci::now_rfc3339(),
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_have_runcs_three_keys() {
        let message = Message {
            text: "cannot start".into(),
            fields: " id=c1".into(),
        };
        let value: serde_json::Value =
            serde_json::from_str(&line(&tracing::Level::ERROR, &message)).expect("json");
        assert_eq!(value["level"], "error");
        assert_eq!(value["msg"], "cannot start id=c1");
        assert!(value["time"].as_str().is_some_and(|t| t.ends_with('Z')));
        assert_eq!(value.as_object().map(|o| o.len()), Some(3));
    }
}
