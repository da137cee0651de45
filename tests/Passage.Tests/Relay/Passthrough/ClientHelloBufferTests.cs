using System.Buffers;
using System.Diagnostics.Tracing;
using System.Net;
using Passage.Relay;
using Passage.Relay.Passthrough;
using Passage.Tests.Infrastructure;

namespace Passage.Tests.Relay.Passthrough;

/// <summary>
/// Tests that count the shared array pool's rentals, process-wide: they run alone, since any other test's connections
/// would move the counts.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class PooledBufferAccountingCollection
{
    public const string Name = "Pooled buffer accounting";
}

/// <summary>What a pass-through connection holds while its ClientHello is awaited.</summary>
[Collection(PooledBufferAccountingCollection.Name)]
public sealed class ClientHelloBufferTests
{
    private static readonly Dictionary<string, IPAddress[]> OriginMap = new() { ["origin.test"] = [IPAddress.Loopback] };

    /// <summary>
    /// Clients that connect and send nothing, or the first bytes of a hello and then nothing, hold no hello buffer while
    /// they are waited for (it is 32 KiB from the pool: as many of those as the connection limit allows, for clients that
    /// had only to connect); the hellos they then send whole are routed, byte for byte.
    /// </summary>
    [Fact]
    public async Task A_client_that_sends_nothing_or_a_few_bytes_holds_no_hello_buffer_while_waited_for()
    {
        var clock = new ManualTimeProvider();
        await using var tap = new TcpTap();
        await using var relay = RelayHarness.Start(
            new PassthroughOptions { Routes = [new SniRoute("origin.test", null, tap.Port)] }, map: OriginMap, time: clock);
        var helloBufferLength = ArrayPool<byte>.Shared.Rent(PassthroughOptions.DefaultMaxClientHelloBytes).Length;
        using var pool = new PoolRentals(minimumLength: helloBufferLength);
        var hello = SyntheticHello.WithServerName("origin.test");

        var created = clock.CreatedTimers;
        var silent = new List<System.Net.Sockets.Socket>();
        for (var i = 0; i < 4; i++)
        {
            silent.Add(await relay.ConnectAsync());
        }
        using var started = await relay.ConnectAsync();
        await Loopback.SendAllAsync(started, hello.AsMemory(0, 7));
        try
        {
            // Each connection's handshake deadline is armed before its first read.
            await Timeouts.WaitUntilAsync(() => clock.CreatedTimers >= created + silent.Count + 1, () => $"{clock.CreatedTimers - created} deadlines armed");
            await Timeouts.WaitUntilAsync(() => pool.Outstanding == 0, () => $"{pool.Outstanding} buffers of {helloBufferLength} bytes or more held");

            await Loopback.SendAllAsync(started, hello.AsMemory(7));
            await Loopback.SendAllAsync(silent[0], hello);
            await Timeouts.WaitUntilAsync(() => tap.FirstBytes.Count == 2);
            Assert.All(tap.FirstBytes, first => Assert.Equal(hello, first));
        }
        finally
        {
            silent.ForEach(s => s.Dispose());
        }
    }

    /// <summary>Arrays of at least a given length rented from the shared pools and not yet returned, as its event source tells.</summary>
    private sealed class PoolRentals(int minimumLength) : EventListener
    {
        private readonly HashSet<int> _held = [];

        public int Outstanding
        {
            get
            {
                lock (_held)
                {
                    return _held.Count;
                }
            }
        }

        protected override void OnEventSourceCreated(EventSource source)
        {
            if (source.Name == "System.Buffers.ArrayPoolEventSource")
            {
                EnableEvents(source, EventLevel.Verbose);
            }
        }

        protected override void OnEventWritten(EventWrittenEventArgs e)
        {
            // BufferRented (1) and BufferReturned (3): bufferId, bufferSize, ...
            if (e.EventId is not (1 or 3) || e.Payload is not [int id, int size, ..] || size < minimumLength)
            {
                return;
            }
            lock (_held)
            {
                if (e.EventId == 1)
                {
                    _held.Add(id);
                }
                else
                {
                    _held.Remove(id);
                }
            }
        }
    }
}
