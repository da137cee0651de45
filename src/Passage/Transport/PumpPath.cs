namespace Passage.Transport;

/// <summary>How one direction of a <see cref="BytePump"/> run moved its bytes.</summary>
internal enum PumpPath
{
    /// <summary>Through a pooled user-space buffer: read, then write.</summary>
    Copy,

    /// <summary>
    /// Zero-copy with splice(2): source socket → kernel pipe → destination socket (Linux). A direction stays on
    /// this path through bursts it copied for want of a pipe (it asks for one again at its next burst); those
    /// are counted as <see cref="SpliceFallback.NoPipe"/>, not here.
    /// </summary>
    Splice,
}
