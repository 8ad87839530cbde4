//! Tests of table rendering.

use super::*;

#[test]
fn columns_are_aligned_to_the_widest_cell() {
    let mut out = Vec::new();
    let rows = vec![
        vec![
            "access-token".to_owned(),
            "1.0.0".to_owned(),
            "/p/libaccess_token.so".to_owned(),
        ],
        vec![
            "sso".to_owned(),
            "10.2.0".to_owned(),
            "/p/libsso.so".to_owned(),
        ],
    ];
    write_table(&mut out, &["METHOD", "VERSION", "PATH"], &rows).unwrap();
    expect_test::expect![[r#"
        METHOD        VERSION  PATH
        access-token  1.0.0    /p/libaccess_token.so
        sso           10.2.0   /p/libsso.so
    "#]]
    .assert_eq(&String::from_utf8(out).unwrap());
}
