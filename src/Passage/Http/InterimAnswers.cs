namespace Passage.Http;

/// <summary>
/// How many interim (1xx) answers a forwarder takes for one request: the client's HTTP proxy, which passes them on,
/// and the tunnel's own HTTP/1.1 writer to the backend (<c>ChunkedRequestHandler</c>), which skips them. A peer that
/// sends them without end would hold the request: an HTTP/1.0 application, which is sent none, would see nothing until
/// the idle timeout, any other would never get its answer, and each one read starts a waiting clock again.
/// </summary>
internal static class InterimAnswers
{
    /// <summary>
    /// The most interim answers one request may get. Go's HTTP client (net/http and its HTTP/2) and Rust's h2 stop at 5
    /// they do not pass on; a proxy passes them on, and 103 Early Hints may come more than once and 102 Processing again
    /// and again while a long request is worked on, so the bound is looser, and still far from unbounded.
    /// </summary>
    public const int Max = 32;
}
