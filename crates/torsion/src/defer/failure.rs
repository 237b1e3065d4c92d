//! `Failure`: an error travelling down a Deferred's errback chain.

use std::any::Any;
use std::error::Error;
use std::fmt;
use std::panic::Location;
use thiserror::Error;

/// Why a Deferred was cancelled (Twisted's `CancelledError`).
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
#[error("the deferred was cancelled")]
pub struct Cancelled;

/// A Deferred did not fire in time (Twisted's `TimeoutError`, from
/// [`Deferred::add_timeout`](crate::defer::Deferred::add_timeout)).
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
#[error("the deferred timed out after {0:?}")]
pub struct TimedOut(pub std::time::Duration);

/// Code run for a Deferred panicked; the panic's message.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("panicked: {0}")]
pub struct Panicked(pub String);

/// An error with the place it came from: what an errback receives.
///
/// Any error converts into a `Failure` (so `?` works in callbacks that
/// return `Result<T, Failure>`), and the `Failure` remembers the source
/// location where that happened. Match on the kind with
/// [`check`](Self::check), [`trap`](Self::trap) or
/// [`downcast_ref`](Self::downcast_ref).
///
/// ```
/// use std::io;
/// use torsion::defer::Failure;
///
/// let f = Failure::new(io::Error::new(io::ErrorKind::NotFound, "no such user"));
/// assert!(f.check::<io::Error>());
/// assert_eq!(f.downcast_ref::<io::Error>().unwrap().kind(), io::ErrorKind::NotFound);
/// // `trap` gives the failure back when it is of another kind.
/// let f = f.trap::<std::fmt::Error>().unwrap_err();
/// assert!(f.to_string().contains("no such user"));
/// ```
pub struct Failure {
    error: Box<dyn Error + 'static>,
    origin: &'static Location<'static>,
}

impl Failure {
    /// Wraps `error`, recording the caller's location as the origin.
    #[track_caller]
    pub fn new(error: impl Error + 'static) -> Failure {
        Failure {
            error: Box::new(error),
            origin: Location::caller(),
        }
    }

    /// Wraps an already boxed error.
    #[track_caller]
    pub fn from_boxed(error: Box<dyn Error + 'static>) -> Failure {
        Failure {
            error,
            origin: Location::caller(),
        }
    }

    /// A failure with just a message.
    #[track_caller]
    pub fn msg(message: impl Into<String>) -> Failure {
        #[derive(Debug)]
        struct Message(String);
        impl fmt::Display for Message {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl Error for Message {}
        Failure::new(Message(message.into()))
    }

    /// A failure from a caught panic payload.
    #[track_caller]
    pub fn from_panic(payload: Box<dyn Any + Send>) -> Failure {
        let message = if let Some(s) = payload.downcast_ref::<&str>() {
            (*s).to_string()
        } else if let Some(s) = payload.downcast_ref::<String>() {
            s.clone()
        } else {
            "a panic with a non-string payload".to_string()
        };
        Failure::new(Panicked(message))
    }

    /// Whether the error is an `E` (Twisted's `check`).
    pub fn check<E: Error + 'static>(&self) -> bool {
        self.error.is::<E>()
    }

    /// The error as an `E`, if it is one.
    pub fn downcast_ref<E: Error + 'static>(&self) -> Option<&E> {
        self.error.downcast_ref::<E>()
    }

    /// Takes the error out as an `E`, or gives the failure back unchanged
    /// (Twisted's `trap`, which re-raises other kinds).
    pub fn trap<E: Error + 'static>(self) -> Result<E, Failure> {
        match self.error.downcast::<E>() {
            Ok(e) => Ok(*e),
            Err(error) => Err(Failure {
                error,
                origin: self.origin,
            }),
        }
    }

    /// The error.
    pub fn error(&self) -> &(dyn Error + 'static) {
        &*self.error
    }

    /// Where the failure was made: the source location of the
    /// `Failure::new`, `?` or `errback` call.
    pub fn origin(&self) -> &'static Location<'static> {
        self.origin
    }

    /// Replaces an origin inside the standard library (what a conversion
    /// through `Into` records) with `here`.
    pub(crate) fn located(mut self, here: &'static Location<'static>) -> Failure {
        let file = self.origin.file();
        if file.contains("/library/core/") || file.contains("/library/alloc/") {
            self.origin = here;
        }
        self
    }

    /// Whether this failure is a cancellation.
    pub fn is_cancelled(&self) -> bool {
        self.check::<Cancelled>()
    }
}

impl<E: Error + 'static> From<E> for Failure {
    #[track_caller]
    fn from(error: E) -> Self {
        Failure::new(error)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.error)?;
        let mut source = self.error.source();
        while let Some(s) = source {
            write!(f, ": {s}")?;
            source = s.source();
        }
        Ok(())
    }
}

impl fmt::Debug for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Failure")
            .field("error", &self.error)
            .field("origin", &format_args!("{}", self.origin))
            .finish()
    }
}
