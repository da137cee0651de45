namespace Passage.Transport;

/// <summary>
/// A token that fires when <c>timeout</c> has passed or <c>stop</c> fires, whichever is first: the timeout of one step
/// of a connection's setup (its handshake, its request head, its upstream connect) under the relay's stop signal.
/// </summary>
/// <remarks>
/// The same as a timed source linked with <c>stop</c>, for less: a linked source is one more object, with a
/// registration on the timed source and its node, for every step of every connection. Here <c>stop</c> cancels the
/// timed source directly, and its registration reuses a node that <c>stop</c>, long-lived, keeps from earlier ones.
/// Dispose it (a <c>using</c>); whoever waited tells a timeout from a stop by asking <c>stop</c>.
/// </remarks>
internal readonly struct Deadline : IDisposable
{
    private readonly CancellationTokenSource _timed;
    private readonly CancellationTokenRegistration _stop;

    public Deadline(TimeSpan timeout, TimeProvider time, CancellationToken stop)
    {
        _timed = new CancellationTokenSource(timeout, time);
        // Fires at once if stop already has.
        _stop = stop.UnsafeRegister(static source => ((CancellationTokenSource)source!).Cancel(), _timed);
    }

    /// <summary>Fires at the deadline or at stop.</summary>
    public CancellationToken Token => _timed.Token;

    /// <summary>Unregisters from stop (waiting for a cancel already running on another thread), then frees the timer.</summary>
    public void Dispose()
    {
        _stop.Dispose();
        _timed?.Dispose();
    }
}
