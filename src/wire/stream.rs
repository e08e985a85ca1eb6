//! The stream under a [`Channel`](super::Channel): counted on the wire, and, once IMAP's
//! COMPRESS is on, inflated and deflated above the count, so that `bytes_in`/`bytes_out` stay
//! what crossed the network.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::CountingIo;
#[cfg(feature = "compress")]
use super::DeflateIo;
use crate::connection::BoxIo;

pub(super) enum Stream {
    Counted(CountingIo<BoxIo>),
    #[cfg(feature = "compress")]
    Compressed(DeflateIo<CountingIo<BoxIo>>),
}

impl Stream {
    /// The stream to give back to the server for a goodbye: what the client can read, so a
    /// compressed one stays compressed.
    pub(super) fn into_io(self) -> BoxIo {
        match self {
            Stream::Counted(counted) => counted.into_inner(),
            #[cfg(feature = "compress")]
            Stream::Compressed(compressed) => Box::new(compressed),
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Counted(io) => Pin::new(io).poll_read(cx, buf),
            #[cfg(feature = "compress")]
            Stream::Compressed(io) => Pin::new(io).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Counted(io) => Pin::new(io).poll_write(cx, buf),
            #[cfg(feature = "compress")]
            Stream::Compressed(io) => Pin::new(io).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Counted(io) => Pin::new(io).poll_flush(cx),
            #[cfg(feature = "compress")]
            Stream::Compressed(io) => Pin::new(io).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Counted(io) => Pin::new(io).poll_shutdown(cx),
            #[cfg(feature = "compress")]
            Stream::Compressed(io) => Pin::new(io).poll_shutdown(cx),
        }
    }
}
