//! The one `unsafe` module: declarations of the libcrypto ENGINE functions that `openssl-sys`
//! does not bind, and the calls to them. libcrypto is already linked through `openssl-sys`.
//!
//! What it guarantees: every pointer passed is either one OpenSSL just returned (checked for
//! NULL) or a NUL-terminated static string; the structural reference from `ENGINE_by_id` is
//! always released, and the functional one from `ENGINE_init` is released on failure and kept
//! for the life of the process on success (the engine then stays loaded, as with `-engine`).
#![allow(unsafe_code)]

use std::ffi::{c_char, c_int, c_uint, CStr};

use foreign_types::ForeignType;
use openssl::error::ErrorStack;
use openssl::pkey_ctx::PkeyCtx;
use openssl_sys::{ENGINE, EVP_PKEY_CTX};

use crate::EngineError;

/// `ENGINE_METHOD_ALL` from `openssl/engine.h`: digests, ciphers, key methods and ASN.1 methods.
const ENGINE_METHOD_ALL: c_uint = 0xFFFF;

extern "C" {
    fn ENGINE_by_id(id: *const c_char) -> *mut ENGINE;
    fn ENGINE_init(e: *mut ENGINE) -> c_int;
    fn ENGINE_set_default(e: *mut ENGINE, flags: c_uint) -> c_int;
    fn ENGINE_finish(e: *mut ENGINE) -> c_int;
    fn ENGINE_free(e: *mut ENGINE) -> c_int;
    fn EVP_PKEY_CTX_ctrl_str(
        ctx: *mut EVP_PKEY_CTX,
        name: *const c_char,
        value: *const c_char,
    ) -> c_int;
}

/// `ENGINE_by_id("gost")` (which loads `gost.so` from OpenSSL's ENGINESDIR), `ENGINE_init`,
/// `ENGINE_set_default(ALL)`: what `openssl … -engine gost` does.
pub(crate) fn load_engine() -> Result<(), EngineError> {
    // SAFETY: a static NUL-terminated id; the result is checked for NULL.
    let engine = unsafe { ENGINE_by_id(c"gost".as_ptr()) };
    if engine.is_null() {
        return Err(EngineError::NotFound {
            source: ErrorStack::get(),
        });
    }
    // SAFETY: `engine` is a live structural reference from ENGINE_by_id.
    if unsafe { ENGINE_init(engine) } != 1 {
        let source = ErrorStack::get();
        // SAFETY: releases the structural reference we hold.
        unsafe { ENGINE_free(engine) };
        return Err(EngineError::Init { source });
    }
    // SAFETY: `engine` is initialised (functional reference held).
    let defaulted = unsafe { ENGINE_set_default(engine, ENGINE_METHOD_ALL) } == 1;
    let source = (!defaulted).then(ErrorStack::get);
    if !defaulted {
        // SAFETY: releases the functional reference taken by ENGINE_init.
        unsafe { ENGINE_finish(engine) };
    }
    // SAFETY: releases the structural reference from ENGINE_by_id; the default registration
    // (and the functional reference on success) keeps the engine alive.
    unsafe { ENGINE_free(engine) };
    match source {
        Some(source) => Err(EngineError::SetDefault { source }),
        None => Ok(()),
    }
}

/// `EVP_PKEY_CTX_ctrl_str`: the engine's string controls (`paramset`) have no binding.
pub(crate) fn set_ctrl_str(
    ctx: &mut PkeyCtx<()>,
    name: &CStr,
    value: &CStr,
) -> Result<(), ErrorStack> {
    // SAFETY: `ctx` is a live EVP_PKEY_CTX owned by the caller for the call's duration; both
    // strings are NUL-terminated.
    let r = unsafe { EVP_PKEY_CTX_ctrl_str(ctx.as_ptr(), name.as_ptr(), value.as_ptr()) };
    if r > 0 {
        Ok(())
    } else {
        Err(ErrorStack::get())
    }
}
