//! Files only their owner may read: the data directory (mode 0700) and the
//! SQLite databases in it (mode 0600). The log, the API keys' hashes and the
//! read models are no one else's business on a shared machine, whatever the
//! umask. (The checkpoint key file is written owner-only by
//! [`crate::checkpoint`].)

use std::io;
use std::path::Path;

/// The suffixes of the files SQLite keeps beside a database in WAL mode.
const SQLITE_SIDE_FILES: [&str; 2] = ["-wal", "-shm"];

/// Creates `dir` (and missing parents) readable by its owner only. A
/// directory that exists is left as it is: it may be the operator's.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Makes the SQLite database at `path` owner-only before SQLite opens it:
/// creates it empty with mode 0600 when missing (SQLite takes an empty file
/// for a new database, and gives the `-wal` and `-shm` files it creates the
/// database's mode), and sets mode 0600 on it and on its `-wal` and `-shm`
/// files when they exist with a wider one.
pub fn prepare_database(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        let mut files = vec![path.to_path_buf()];
        for suffix in SQLITE_SIDE_FILES {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            files.push(name.into());
        }
        for file in files {
            match std::fs::metadata(&file) {
                Ok(metadata) if metadata.permissions().mode() & 0o077 != 0 => {
                    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))?;
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}
