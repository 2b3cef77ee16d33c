//! Maps a configuration key path (`authorities[0].configuration.password`) to
//! the line where it appears, so that every error — including the semantic
//! checks that run after deserialisation — can name its line.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// Line numbers (1-based) of every key and sequence item in a YAML document.
#[derive(Debug, Default)]
pub struct LineIndex {
    lines: HashMap<String, usize>,
}

impl LineIndex {
    /// Builds the index; a document the event parser cannot read yields an
    /// empty index (serde reports that syntax error with its own location).
    pub fn build(text: &str) -> LineIndex {
        let mut builder = Builder::default();
        let mut parser = Parser::new_from_str(text);
        let _ = parser.load(&mut builder, false);
        LineIndex {
            lines: builder.lines,
        }
    }

    /// The line of `path`, or of its closest ancestor that has one.
    pub fn line_of(&self, path: &str) -> Option<usize> {
        let mut p = path;
        loop {
            if let Some(line) = self.lines.get(p) {
                return Some(*line);
            }
            let cut = p.rfind(['.', '['])?;
            p = &p[..cut];
        }
    }
}

enum Frame {
    Mapping { path: String, key: Option<String> },
    Sequence { path: String, index: usize },
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    lines: HashMap<String, usize>,
}

impl Builder {
    /// Path of the value that starts now, advancing the parent frame.
    fn value_path(&mut self, line: usize) -> Option<String> {
        match self.stack.last_mut() {
            None => Some(String::new()),
            Some(Frame::Mapping { path, key }) => {
                let k = key.take()?;
                Some(join(path, &k))
            }
            Some(Frame::Sequence { path, index }) => {
                let p = format!("{path}[{index}]");
                *index += 1;
                Some(p).inspect(|p| {
                    self.lines.entry(p.clone()).or_insert(line);
                })
            }
        }
    }
}

fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let line = mark.line();
        match ev {
            Event::Scalar(value, ..) => {
                if let Some(Frame::Mapping { path, key }) = self.stack.last_mut() {
                    if key.is_none() {
                        let full = join(path, &value);
                        self.lines.entry(full).or_insert(line);
                        *key = Some(value);
                        return;
                    }
                }
                let _ = self.value_path(line);
            }
            Event::Alias(_) => {
                let _ = self.value_path(line);
            }
            Event::MappingStart(..) => {
                let path = self.value_path(line).unwrap_or_default();
                self.stack.push(Frame::Mapping { path, key: None });
            }
            Event::SequenceStart(..) => {
                let path = self.value_path(line).unwrap_or_default();
                self.stack.push(Frame::Sequence { path, index: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nested_keys_and_sequence_items() {
        let text = "server:\n  listen: x\nauthorities:\n  - name: a\n    configuration:\n      password: p\n  - name: b\n";
        let idx = LineIndex::build(text);
        assert_eq!(idx.line_of("server"), Some(1));
        assert_eq!(idx.line_of("server.listen"), Some(2));
        assert_eq!(idx.line_of("authorities[0].name"), Some(4));
        assert_eq!(
            idx.line_of("authorities[0].configuration.password"),
            Some(6)
        );
        assert_eq!(idx.line_of("authorities[1].name"), Some(7));
        // Unknown leaf falls back to the closest ancestor.
        assert_eq!(idx.line_of("authorities[1].nope"), Some(7));
        assert_eq!(idx.line_of("authorities[0].configuration.missing"), Some(5));
    }
}
