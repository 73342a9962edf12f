//! Components compiled once per distinct content, and kept across restarts.
//!
//! A host with a thousand tenants on one `echo-service.wasm` compiles it once: components are
//! keyed by the SHA-256 of their bytes, so every tenant that names the same content shares one
//! compiled [`Component`] (each tenant still gets its own instance-pre and instances). The
//! compiled artifact is kept in `state_dir/compiled/<sha256>-<engine>.cwasm`, where `<engine>`
//! names the engine's compilation settings and wasmtime version, so that a restart reads it
//! instead of compiling again; a file that does not load (another wasmtime, a torn write) is
//! compiled anew and replaced.
//!
//! Loading a compiled artifact runs its machine code unchecked, so the folder is trusted only as
//! Switchyard's own: it is made `0700` (which only its owner can do) before anything is read from
//! it, and files are written under a temporary name and renamed, never left half-written.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

use anyhow::Context;
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use super::state_dir::own_folder;

/// The SHA-256 of a component's bytes: what it is, whatever its path (a reload compares these).
pub type ContentDigest = [u8; 32];

/// How the components of one start were obtained.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadCounts {
    /// Compiled from their wasm.
    pub compiled: usize,
    /// Read from `state_dir/compiled`.
    pub from_disk: usize,
    /// Shared with a component of the same content loaded before.
    pub shared: usize,
}

/// The components of one host: compiled once per distinct content.
pub struct Components {
    engine: Engine,
    cache_dir: Option<PathBuf>,
    engine_tag: String,
    loaded: HashMap<[u8; 32], Component>,
    counts: LoadCounts,
}

impl Components {
    /// Components for `engine`, kept in `state_dir/compiled` (created `0700`); without a usable
    /// folder there (read-only, not ours), components are compiled at every start, with a
    /// warning.
    pub fn new(engine: &Engine, state_dir: &Path) -> Self {
        let dir = state_dir.join("compiled");
        let cache_dir = match own_folder(state_dir).and_then(|()| own_folder(&dir)) {
            Ok(()) => Some(dir),
            Err(e) => {
                tracing::warn!("{e:#}; components are compiled at every start");
                None
            }
        };
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Components {
            engine: engine.clone(),
            cache_dir,
            engine_tag: format!("{:016x}", hasher.finish()),
            loaded: HashMap::new(),
            counts: LoadCounts::default(),
        }
    }

    /// How the components so far were obtained.
    pub fn counts(&self) -> LoadCounts {
        self.counts
    }

    /// The component at `path` and the digest of its content; `what` names it in errors
    /// (`tenant acme, component web`).
    pub fn load(&mut self, path: &Path, what: &str) -> anyhow::Result<(ContentDigest, Component)> {
        let bytes = std::fs::read(path).with_context(|| format!("{what}: cannot read {}", path.display()))?;
        let digest: ContentDigest = Sha256::digest(&bytes).into();
        if let Some(component) = self.loaded.get(&digest) {
            self.counts.shared += 1;
            return Ok((digest, component.clone()));
        }
        let cached = self
            .cache_dir
            .as_ref()
            .map(|dir| dir.join(format!("{}-{}.cwasm", hex(&digest), self.engine_tag)));
        let component = match cached.as_deref().and_then(|file| self.read_compiled(file)) {
            Some(component) => {
                self.counts.from_disk += 1;
                component
            }
            None => {
                let component = Component::new(&self.engine, &bytes).map_err(|e| {
                    anyhow::Error::from(e)
                        .context(format!("{what}: {} is not a valid component", path.display()))
                })?;
                self.counts.compiled += 1;
                if let Some(file) = &cached {
                    write_compiled(&component, file);
                }
                component
            }
        };
        self.loaded.insert(digest, component.clone());
        Ok((digest, component))
    }

    /// Forgets every compiled component but those of `in_use` (after a reload), so that the
    /// ones no tenant runs any more are freed once their last instance ends.
    pub fn keep_only(&mut self, in_use: &std::collections::HashSet<ContentDigest>) {
        self.loaded.retain(|digest, _| in_use.contains(digest));
    }

    /// Counts afresh from now on (each reload reports its own).
    pub fn reset_counts(&mut self) {
        self.counts = LoadCounts::default();
    }

    /// The compiled component in `file`, if there is one and it loads into this engine.
    #[allow(unsafe_code)]
    fn read_compiled(&self, file: &Path) -> Option<Component> {
        if !file.exists() {
            return None;
        }
        // SAFETY: `file` is in `state_dir/compiled`, which `own_folder` made `0700` (so only this
        // user writes there), and only `write_compiled` writes it, from `Component::serialize`,
        // renamed into place whole. wasmtime still checks its version and settings.
        match unsafe { Component::deserialize_file(&self.engine, file) } {
            Ok(component) => Some(component),
            Err(e) => {
                tracing::warn!(file = %file.display(), "a compiled component does not load ({e}); compiling it again");
                None
            }
        }
    }
}

/// Keeps `component` in `file` (written whole under a temporary name, then renamed); a failure
/// only costs a compile at the next start.
fn write_compiled(component: &Component, file: &Path) {
    let written = component.serialize().map_err(anyhow::Error::from).and_then(|bytes| {
        let partial = file.with_extension(format!("partial-{}", std::process::id()));
        std::fs::write(&partial, bytes)?;
        std::fs::rename(&partial, file)?;
        Ok(())
    });
    if let Err(e) = written {
        tracing::warn!(file = %file.display(), "cannot keep a compiled component ({e:#}); it is compiled again at the next start");
    }
}

/// `bytes` in lowercase hexadecimal.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The digest of the component file at `path`, without compiling it.
pub fn digest_of(path: &Path) -> std::io::Result<ContentDigest> {
    Ok(Sha256::digest(std::fs::read(path)?).into())
}
