//! One progress bar per phase on a terminal; plain start and end lines
//! otherwise (CI logs).

use std::io::IsTerminal as _;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

pub struct Phase {
    name: &'static str,
    bar: Option<ProgressBar>,
    done: u64,
    started: Instant,
}

impl Phase {
    pub fn start(name: &'static str, total: u64) -> Self {
        let bar = std::io::stdout().is_terminal().then(|| {
            let bar = ProgressBar::new(total);
            let style = ProgressStyle::with_template("{prefix:>22} [{bar:30}] {pos}/{len} {per_sec} {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
            bar.set_style(style);
            bar.set_prefix(name);
            bar
        });
        if bar.is_none() {
            println!("{name}: {total} to load");
        }
        Self { name, bar, done: 0, started: Instant::now() }
    }

    pub fn add(&mut self, n: u64) {
        self.done += n;
        if let Some(bar) = &self.bar {
            bar.inc(n);
        }
    }

    pub fn finish(self, note: &str) {
        let took = self.started.elapsed().as_secs_f64();
        match self.bar {
            Some(bar) => bar.finish_with_message(note.to_owned()),
            None => println!("{}: {} done in {took:.1} s{}", self.name, self.done, note),
        }
        if !note.is_empty() && std::io::stdout().is_terminal() {
            println!("{:>22}  {}", "", note.trim());
        }
    }
}
