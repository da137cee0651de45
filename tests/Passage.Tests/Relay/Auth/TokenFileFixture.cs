using Passage.Relay.Auth;
using Passage.Tests.Infrastructure;

namespace Passage.Tests.Relay.Auth;

/// <summary>A temporary directory with a token file in it, a manual clock, and the changes reported.</summary>
internal sealed class TokenFileFixture : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("passage-tokens-").FullName;
    private int _secretVersion;

    public TokenFileFixture() => Path = System.IO.Path.Combine(_directory, "tokens");

    public string Path { get; }

    public ManualTimeProvider Time { get; } = new();

    public List<TokenFileChangedEventArgs> Changes { get; } = new();

    public void Write(string content) => File.WriteAllText(Path, content);

    /// <summary>Replaces the file the way editors and configuration managers do: write aside, rename over.</summary>
    public void ReplaceByRename(string content)
    {
        string aside = System.IO.Path.Combine(_directory, "tokens.tmp");
        File.WriteAllText(aside, content);
        File.Move(aside, Path, overwrite: true);
    }

    /// <summary>
    /// Publishes the file as Kubernetes mounts a secret: <c>tokens</c> is a link to <c>..data/tokens</c>, and
    /// <c>..data</c> a link to a directory of this version, replaced by a link to a new one (Kubernetes renames it over; deleted and made again here).
    /// Neither <c>tokens</c> itself nor its directory entry ever changes.
    /// </summary>
    public void PublishAsMountedSecret(string content)
    {
        string version = System.IO.Path.Combine(_directory, $"..{++_secretVersion}");
        Directory.CreateDirectory(version);
        File.WriteAllText(System.IO.Path.Combine(version, "tokens"), content);
        string data = System.IO.Path.Combine(_directory, "..data");
        File.Delete(data);
        File.CreateSymbolicLink(data, System.IO.Path.GetFileName(version));
        if (!File.Exists(Path))
        {
            File.CreateSymbolicLink(Path, System.IO.Path.Combine("..data", "tokens"));
        }
    }

    public TokenFile Open(bool watch = true)
    {
        Assert.True(TokenFile.TryOpen(Path, out TokenFile? file, out string? error, Time, checkInterval: null, watch), error);
        file.Changed += (_, change) => Changes.Add(change);
        return file;
    }

    /// <summary>Lets the check interval pass.</summary>
    public void Tick() => Time.Advance(TokenFile.DefaultCheckInterval);

    public void Dispose() => Directory.Delete(_directory, recursive: true);
}
