//! Private directories and atomic private files.

use super::*;

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(path).expect("meta").permissions())
        & 0o777
}

#[test]
fn files_are_private_and_replaced_atomically() {
    let root = tempfile::tempdir().expect("tempdir");
    let path = root.path().join("a").join("b").join("secret.json");
    write_private(&path, b"one").expect("write");
    write_private(&path, b"two").expect("replace");
    assert_eq!(std::fs::read(&path).expect("read"), b"two");
    let leftovers: Vec<_> = std::fs::read_dir(path.parent().expect("dir"))
        .expect("list")
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    assert_eq!(leftovers, ["secret.json"], "no temporary files left");
    #[cfg(unix)]
    {
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&root.path().join("a")), 0o700);
        assert_eq!(mode(&root.path().join("a").join("b")), 0o700);
    }
}

#[test]
fn create_private_file_refuses_to_overwrite() {
    let root = tempfile::tempdir().expect("tempdir");
    let path = root.path().join("challenge.key");
    create_private_file(&path, b"x").expect("create");
    let again = create_private_file(&path, b"y").expect_err("exists");
    assert_eq!(again.kind(), std::io::ErrorKind::AlreadyExists);
    assert_eq!(std::fs::read(&path).expect("read"), b"x");
}
