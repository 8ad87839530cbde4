//! Tests of plugin file naming and of the trust check, on real files.

use std::os::unix::fs::PermissionsExt as _;

use super::*;

#[test]
fn file_names_and_method_ids_map_both_ways() {
    let name = library_file_name("access-token");
    assert_eq!(
        name,
        format!(
            "{}access_token{}",
            std::env::consts::DLL_PREFIX,
            std::env::consts::DLL_SUFFIX
        )
    );
    assert_eq!(
        method_id_of_file(Path::new(&name)).as_deref(),
        Some("access-token")
    );
    assert_eq!(method_id_of_file(Path::new("README.md")), None);
    assert_eq!(
        method_id_of_file(Path::new(&format!(
            "{}{}",
            std::env::consts::DLL_PREFIX,
            std::env::consts::DLL_SUFFIX
        ))),
        None
    );
}

#[test]
fn only_library_files_are_listed_and_a_missing_dir_has_none() {
    let dir = tempfile::tempdir().unwrap();
    for file in [
        library_file_name("b"),
        library_file_name("a"),
        "notes.txt".to_owned(),
    ] {
        std::fs::write(dir.path().join(file), b"x").unwrap();
    }
    let listed: Vec<_> = libraries_in(dir.path())
        .unwrap()
        .iter()
        .filter_map(|p| method_id_of_file(p))
        .collect();
    assert_eq!(listed, ["a", "b"]);
    assert!(
        libraries_in(&dir.path().join("missing"))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn writable_files_and_folders_are_untrusted() {
    let dir = tempfile::tempdir().unwrap();
    let library = dir.path().join(library_file_name("x"));
    std::fs::write(&library, b"x").unwrap();
    let chmod = |path: &Path, mode| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap()
    };

    chmod(dir.path(), 0o755);
    chmod(&library, 0o755);
    assert_eq!(
        trusted_path(&library).unwrap(),
        library.canonicalize().unwrap()
    );

    chmod(&library, 0o775);
    let error = trusted_path(&library).unwrap_err().to_string();
    assert!(
        error.contains("file") && error.contains("writable by group or others (mode 775)"),
        "{error}"
    );

    chmod(&library, 0o644);
    chmod(dir.path(), 0o757);
    let error = trusted_path(&library).unwrap_err().to_string();
    assert!(
        error.contains("folder") && error.contains("chmod go-w"),
        "{error}"
    );
}

#[test]
fn a_symlink_is_judged_by_the_folder_it_sits_in_and_resolved_before_loading() {
    let trusted = tempfile::tempdir().unwrap();
    let library = trusted.path().join(library_file_name("x"));
    std::fs::write(&library, b"x").unwrap();
    std::fs::set_permissions(trusted.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&library, std::fs::Permissions::from_mode(0o755)).unwrap();

    let open = tempfile::tempdir().unwrap();
    let link = open.path().join(library_file_name("x"));
    std::os::unix::fs::symlink(&library, &link).unwrap();
    std::fs::set_permissions(open.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let error = trusted_path(&link).unwrap_err().to_string();
    assert!(
        error.contains("folder") && error.contains("(mode 777)"),
        "{error}"
    );

    std::fs::set_permissions(open.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(
        trusted_path(&link).unwrap(),
        library.canonicalize().unwrap(),
        "the real path is loaded"
    );
}
