namespace Passage.Transport;

/// <summary>How one direction of a <see cref="BytePump"/> run moved its bytes.</summary>
internal enum PumpPath
{
    /// <summary>Through a pooled user-space buffer: read, then write.</summary>
    Copy,

    /// <summary>Zero-copy with splice(2): source socket → kernel pipe → destination socket (Linux).</summary>
    Splice,
}
