using Passage.Transport;

namespace Passage.Relay;

/// <summary>
/// One connection whose bytes are being relayed, from the moment its pump starts to its end, with
/// nothing awaiting it in between: the pump tells this object of its end, which does the end's
/// work once and reports the end.
/// </summary>
/// <remarks>
/// <code>
///  setup (awaited; completes once the pump runs) ─► Start: the pump, told to report to this object
///    … while relayed, no frame waits above the pump: this object is all that is added to it …
///  the pump ends ─► the front door counts and logs it ─► upstream, tunnel slot, client disposed
///               ─► end.Ended(id, fault)
/// </code>
/// Every async frame awaiting a long-lived pump costs its box (128–240 bytes here) for the whole
/// life of the connection; a relay holding tens of thousands of idle connections pays that per level.
/// </remarks>
/// <param name="client">The accepted side; disposed at the end.</param>
/// <param name="upstream">The dialed side; disposed at the end.</param>
/// <param name="slot">A tunnel slot, if any; given back at the end.</param>
/// <param name="accounting">The front door's counters and log line for the end.</param>
/// <param name="end">Told once the end's work is done.</param>
/// <param name="id">The connection's id, for logs.</param>
internal sealed class RelayedConnection(IDuplexConnection client, IDuplexConnection upstream, IDisposable? slot, IRelayAccounting accounting, IConnectionEnd end, long id)
    : IPumpCompletion
{
    /// <summary>
    /// Starts the pump (<paramref name="preamble"/> goes to the upstream first) and returns at once;
    /// from here on the end is certain to run, once. With <paramref name="pooledPreamble"/>, the preamble's array
    /// is the pump's to give back to <see cref="System.Buffers.ArrayPool{T}.Shared"/> once written.
    /// </summary>
    public void Start(PumpOptions options, ReadOnlyMemory<byte> preamble, CancellationToken cancellationToken, bool pooledPreamble = false)
    {
        try
        {
            BytePump.Run(client, upstream, options, preamble, this, cancellationToken, pooledPreamble);
        }
        catch (Exception e)
        {
            // A bug: ended as if the pump had failed, so that the end's work still runs once.
            PumpEnded(default, e);
        }
    }

    /// <inheritdoc />
    public void PumpEnded(PumpResult result, Exception? fault) => _ = EndAsync(fault is null ? result : null, fault);

    private async Task EndAsync(PumpResult? result, Exception? pumpFault)
    {
        Exception? fault = pumpFault;
        try
        {
            await using var ownedClient = client;
            using var ownedSlot = slot;
            await using var ownedUpstream = upstream;
            accounting.Relayed(id, result ?? new PumpResult(PumpEnd.Failed, PumpSide.Upstream, 0, 0));
        }
        catch (Exception e)
        {
            fault ??= e;
        }
        end.Ended(id, fault);
    }
}
