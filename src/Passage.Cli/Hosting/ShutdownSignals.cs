using System.Runtime.InteropServices;

namespace Passage.Cli.Hosting;

/// <summary>
/// SIGTERM, SIGINT (Ctrl-C) and SIGHUP (the terminal closed): the first asks for a graceful stop
/// (<see cref="StopRequested"/>), the second for an immediate one (<see cref="HurryRequested"/>: open connections are
/// closed now).
/// </summary>
/// <remarks>
/// SIGHUP does not mean "reload": every file Passage reads while it runs (the token file, hosts, resolv.conf) is
/// re-read when it changes, so there is nothing to reload. Left to its default, it would kill the process at once,
/// without a drain, when the terminal it runs in is closed.
/// </remarks>
internal sealed class ShutdownSignals : IDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly CancellationTokenSource _hurry = new();
    private readonly PosixSignalRegistration[] _registrations;
    private int _count;

    public ShutdownSignals()
    {
        _registrations =
        [
            PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal),
            PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal),
            PosixSignalRegistration.Create(PosixSignal.SIGHUP, OnSignal),
        ];
    }

    public CancellationToken StopRequested => _stop.Token;

    public CancellationToken HurryRequested => _hurry.Token;

    private void OnSignal(PosixSignalContext context)
    {
        // We stop on our own terms: keep the runtime from terminating the process.
        context.Cancel = true;
        try
        {
            (Interlocked.Increment(ref _count) == 1 ? _stop : _hurry).Cancel();
        }
        catch (ObjectDisposedException)
        {
            // A signal handled while the process ends: disposing the registrations does not wait for a handler under way.
        }
    }

    public void Dispose()
    {
        foreach (var registration in _registrations)
        {
            registration.Dispose();
        }
        _stop.Dispose();
        _hurry.Dispose();
    }
}
