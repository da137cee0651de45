using System.Diagnostics;

namespace Passage.Client;

/// <summary>
/// How long an HTTP/2 tunnel request waits for the relay's answer: the answer timeout alone when a connection to the relay
/// is up, the connect timeout more when the request may wait for one to be set up; cancelled, too, with the caller's token
/// or the link's closing. <see cref="Limit"/> is the limit given, which a failure names.
/// </summary>
/// <remarks>
/// A request made while a connection is up may still wait for another: the HTTP client opens one when those it has take
/// no more streams (the relay's SETTINGS_MAX_CONCURRENT_STREAMS) or are going away (a GOAWAY), and the request waits in its
/// queue for it, past the answer timeout if the relay is slow to reach. Which connection a request goes on cannot be told
/// from outside the HTTP client; that a setup started while it waited can (its connect callback ran, see
/// <see cref="RelayConnections.Setups"/>). Such a request, when the answer timeout runs out, is given the longer limit,
/// counted from its start. Late at worst (one already sent, waiting for its answer while another request's connection is
/// set up), never early.
/// </remarks>
internal sealed class AnswerDeadline : IDisposable
{
    private readonly object _gate = new();
    private readonly CancellationTokenSource _cancel;
    private readonly TimeSpan _setupAndAnswer;
    private readonly Func<bool> _setupStarted;
    private readonly long _started = Stopwatch.GetTimestamp();
    private readonly Timer? _timer;
    private TimeSpan _limit;
    private bool _disposed;

    /// <summary>
    /// Starts the wait: <paramref name="answer"/> when <paramref name="connectionUp"/> (then, when it runs out,
    /// <paramref name="setupAndAnswer"/> if <paramref name="setupStarted"/> says a setup started meanwhile), else
    /// <paramref name="setupAndAnswer"/>.
    /// </summary>
    public AnswerDeadline(TimeSpan answer, TimeSpan setupAndAnswer, bool connectionUp, Func<bool> setupStarted, CancellationToken cancellationToken, CancellationToken closing)
    {
        _cancel = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, closing);
        _setupAndAnswer = setupAndAnswer;
        _setupStarted = setupStarted;
        if (connectionUp && answer != Timeout.InfiniteTimeSpan)
        {
            _limit = answer;
            _timer = new Timer(static state => ((AnswerDeadline)state!).RanOut(), this, answer, Timeout.InfiniteTimeSpan);
        }
        else
        {
            _limit = setupAndAnswer;
            _cancel.CancelAfter(setupAndAnswer);
        }
    }

    /// <summary>Cancelled when the limit runs out, or with the caller's token or the link's closing.</summary>
    public CancellationToken Token => _cancel.Token;

    /// <summary>Whether the wait has ended, by its limit or otherwise.</summary>
    public bool IsCancellationRequested => _cancel.IsCancellationRequested;

    /// <summary>The limit given to the request now: the one that ran out once the wait is over.</summary>
    public TimeSpan Limit
    {
        get
        {
            lock (_gate)
            {
                return _limit;
            }
        }
    }

    private void RanOut()
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }
            if (_setupStarted())
            {
                _limit = _setupAndAnswer;
                var left = _setupAndAnswer - Stopwatch.GetElapsedTime(_started);
                if (left > TimeSpan.Zero)
                {
                    _cancel.CancelAfter(left);
                    return;
                }
            }
            // Under the gate, so that the source is not disposed meanwhile; a disposing that the cancelling itself runs (the
            // request's end, on this thread) comes through the gate, which this thread holds.
            _cancel.Cancel();
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }
            _disposed = true;
        }
        _timer?.Dispose();
        _cancel.Dispose();
    }
}
