using System.Net;

namespace Passage.Tests.Relay.Connect;

/// <summary>
/// A DNS server the test answers: a lookup waits until <see cref="Answer"/> is called, so a test can act while the relay
/// is still dialing (<see cref="Asked"/> tells it the lookup has begun), with no clock involved.
/// </summary>
internal sealed class HeldDns
{
    private readonly TaskCompletionSource _asked = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource<IPAddress[]> _answer = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes once the relay has asked for a name.</summary>
    public Task Asked => _asked.Task;

    /// <summary>The lookup, for <see cref="ConnectHarness.StartAsync"/>'s <c>dns</c>.</summary>
    public async Task<IPAddress[]> LookupAsync(string name, CancellationToken cancellationToken)
    {
        _asked.TrySetResult();
        return await _answer.Task.WaitAsync(cancellationToken);
    }

    /// <summary>Answers every lookup, held or to come, with <paramref name="addresses"/>.</summary>
    public void Answer(params IPAddress[] addresses) => _answer.SetResult(addresses);
}
