using Passage.Relay.Auth;
using Passage.Tests.Infrastructure;

namespace Passage.Tests.Relay.Auth;

/// <summary>A temporary directory with a token file in it, a manual clock, and the changes reported.</summary>
internal sealed class TokenFileFixture : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("passage-tokens-").FullName;

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
