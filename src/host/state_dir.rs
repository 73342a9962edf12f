//! `state_dir`, Switchyard's own folder: what is kept there (the embedded MariaDB, compiled
//! components) is trusted, so every folder in it is made its owner's alone before use.

use std::fs::DirBuilder;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

use anyhow::Context;

/// Restricts `path` to its owner with `mode` (`0o700` for a folder, `0o600` for a file); fails
/// when it is not ours.
pub fn owner_only(path: &Path, mode: u32) -> anyhow::Result<()> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("state_dir: cannot restrict {} to its owner", path.display()))
}

/// Creates the folder `dir` if missing and restricts it to its owner (`0700`).
pub fn own_folder(dir: &Path) -> anyhow::Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("state_dir: cannot create {}", dir.display()))?;
    owner_only(dir, 0o700)
}
