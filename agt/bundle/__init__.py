"""OPA bundles: build them reproducibly, sign them the way OPA verifies, and check them."""

from agt.bundle.build import BuiltBundle, BundleError, add_rego_library, assemble_bundle, build_bundle, bundle_files
from agt.bundle.sign import file_hash, sign_files, verify_bundle

__all__ = ["BuiltBundle", "BundleError", "add_rego_library", "assemble_bundle", "build_bundle", "bundle_files", "file_hash", "sign_files", "verify_bundle"]
