//! Pins the complete layout of ABI major 1.
//!
//! The snapshot `abi-v1.layout` lists every type reachable from the root module (the login-flow
//! vtable, the host-services vtable, every payload) with its package major, size, alignment,
//! representation, enum discriminants, fields and function signatures. abi_stable refuses to load a plugin when any of that differs
//! in a way it cannot reconcile, and our promise (any 1.x plugin loads into any 1.y host) is
//! stricter still: for major 1 this snapshot must never change. If this test fails, undo the
//! change to the types, or start ABI major 2 (see `EVOLUTION.md`).

use std::collections::HashMap;
use std::fmt::Write;

use abi_stable::StableAbi;
use abi_stable::std_types::UTypeId;
use abi_stable::type_layout::{TLData, TypeLayout};

use super::*;

#[cfg(target_pointer_width = "64")]
#[test]
fn layout_of_abi_major_1_is_frozen() {
    let snapshot = describe(<PluginRoot_Ref as StableAbi>::LAYOUT);
    expect_test::expect_file!["../abi-v1.layout"].assert_eq(&snapshot);
}

#[test]
fn version_strings_carry_the_abi_major() {
    let version = <PluginRoot_Ref as abi_stable::library::RootModule>::VERSION_STRINGS;
    let major = version.version.as_str().split('.').next();
    assert_eq!(major, Some(ABI_MAJOR.to_string().as_str()));
}

/// Describes every type reachable from `root`, one entry per type, numbered in depth-first
/// order so that generic instantiations (`RVec<A>` and `RVec<B>` print alike) stay apart.
fn describe(root: &'static TypeLayout) -> String {
    let mut numbers = HashMap::new();
    let mut order = Vec::new();
    number_types(root, &mut numbers, &mut order);
    let number_of = |layout: &TypeLayout| numbers[&layout.get_utypeid()];
    let mut text = String::new();
    for (number, layout) in order.iter().enumerate() {
        let _ = writeln!(
            text,
            "#{number} {} [{}] size {} align {} {:?} {:?}{}{}",
            layout.full_type(),
            package_major(layout),
            layout.size(),
            layout.alignment(),
            layout.data_discriminant(),
            layout.repr_attr(),
            if layout.is_nonzero() { " nonzero" } else { "" },
            if layout.extra_checks().is_some() {
                " extra-checks"
            } else {
                ""
            },
        );
        for phantom in layout.phantom_fields().iter() {
            let _ = writeln!(
                text,
                "  phantom {}: #{}",
                phantom.name(),
                number_of(phantom.layout())
            );
        }
        let fields = match layout.data() {
            TLData::Struct { fields } | TLData::Union { fields } => Some(fields),
            TLData::PrefixType(prefix) => {
                let _ = writeln!(text, "  first suffix field {}", prefix.first_suffix_field);
                Some(prefix.fields)
            }
            TLData::Enum(enum_) => {
                let _ = writeln!(
                    text,
                    "  variants {:?} discriminants {:?} {:?}",
                    enum_.variant_names, enum_.discriminants, enum_.exhaustiveness
                );
                Some(enum_.fields)
            }
            TLData::Primitive(primitive) => {
                let _ = writeln!(text, "  {primitive:?}");
                None
            }
            TLData::Opaque => None,
        };
        for field in fields.iter().flat_map(|fields| fields.iter()) {
            let _ = writeln!(text, "  .{}: #{}", field.name(), number_of(field.layout()));
            for function in field.function_range().iter() {
                let _ = writeln!(text, "      {function}");
            }
        }
    }
    text
}

fn number_types(
    layout: &'static TypeLayout,
    numbers: &mut HashMap<UTypeId, usize>,
    order: &mut Vec<&'static TypeLayout>,
) {
    if numbers.contains_key(&layout.get_utypeid()) {
        return;
    }
    numbers.insert(layout.get_utypeid(), order.len());
    order.push(layout);
    for nested in layout.shared_vars().type_layouts() {
        number_types(nested(), numbers, order);
    }
}

/// `package major`: patch and minor releases of a package must not change the snapshot.
fn package_major(layout: &TypeLayout) -> String {
    let (package, version) = layout.package_and_version();
    let major = version
        .version
        .as_str()
        .split('.')
        .take(2)
        .collect::<Vec<_>>();
    // For 0.y.z crates the minor is the breaking component (abi_stable 0.11 ≠ 0.12).
    let major = if major.first() == Some(&"0") {
        major.join(".")
    } else {
        major[0].to_string()
    };
    format!("{package} {major}")
}
