namespace Passage.Transport;

/// <summary>Told once when a <see cref="BytePump"/> run started with <see cref="BytePump.Run"/> ends.</summary>
internal interface IPumpCompletion
{
    /// <summary>
    /// The run has ended: <paramref name="result"/> says how, and <paramref name="fault"/> is an
    /// exception that is not a network failure (a bug), if one ended it. Called on the thread that
    /// ended the run; must not throw.
    /// </summary>
    void PumpEnded(PumpResult result, Exception? fault);
}
