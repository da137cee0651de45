namespace Passage.Tests.Identity;

/// <summary>A fact that needs the <c>openssl</c> command; skipped, with a reason, only where it is not installed.</summary>
internal sealed class OpenSslFactAttribute : FactAttribute
{
    public OpenSslFactAttribute()
    {
        if (!OpenSsl.IsAvailable)
        {
            Skip = "openssl is not installed";
        }
    }
}
