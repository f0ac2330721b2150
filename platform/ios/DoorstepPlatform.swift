// Doorstep's iOS glue, called from src/platform/ios.rs through the Objective-C runtime (objc2). The Rust
// side type-checks; this file has NEVER been compiled or run (written without a Mac), see docs/mobile.md.
//
// The class and every method carry an explicit @objc name: Rust looks the class up as "DoorstepPlatform"
// (without @objc(...) Swift would register a mangled, module-prefixed name) and sends exactly the selectors
// written here. Swift Int is NSInteger (Rust isize), Bool is BOOL (Rust bool), String is NSString.
//
// As on Android, every user-visible string comes from Rust (src/platform/notice.rs), where the wording is
// fixed and names nobody; this file never builds notification text of its own. Rust may call from any
// thread, so everything that touches UIKit hops to the main queue.
import AudioToolbox
import Security
import UIKit
import UserNotifications

@objc(DoorstepPlatform) public final class DoorstepPlatform: NSObject {
    private static var backgroundTask: UIBackgroundTaskIdentifier = .invalid
    private static var privacyCover: UIView?
    private static let keyService = "Doorstep data key"
    private static let keyAccount = "this phone"

    /// The phone's data key (32 bytes, URL-safe base 64 without padding, as src/vault.rs reads it) from the
    /// Keychain, kept for this device only and readable after the first unlock (so the visit timer can
    /// sync while the phone is locked); nil when there is none. With create, a new key replaces any old
    /// one. `folder` (the data folder) is given the data protection class and kept out of backups.
    @objc(dataKey:folder:) public static func dataKey(create: Bool, folder: String) -> String? {
        protect(folder: folder)
        let query: [String: Any] = [
            kSecClass as String: kSecClassGenericPassword,
            kSecAttrService as String: keyService,
            kSecAttrAccount as String: keyAccount,
        ]
        if create {
            SecItemDelete(query as CFDictionary)
            var bytes = [UInt8](repeating: 0, count: 32)
            guard SecRandomCopyBytes(kSecRandomDefault, bytes.count, &bytes) == errSecSuccess else { return nil }
            var item = query
            item[kSecValueData as String] = Data(bytes)
            item[kSecAttrAccessible as String] = kSecAttrAccessibleAfterFirstUnlockThisDeviceOnly
            guard SecItemAdd(item as CFDictionary, nil) == errSecSuccess else { return nil }
            return base64url(Data(bytes))
        }
        var lookup = query
        lookup[kSecReturnData as String] = true
        lookup[kSecMatchLimit as String] = kSecMatchLimitOne
        var found: CFTypeRef?
        guard SecItemCopyMatching(lookup as CFDictionary, &found) == errSecSuccess,
              let data = found as? Data else { return nil }
        return base64url(data)
    }

    /// Forgets the data key: without it nothing the phone sealed can be read again.
    @objc(deleteDataKey) public static func deleteDataKey() {
        let query: [String: Any] = [
            kSecClass as String: kSecClassGenericPassword,
            kSecAttrService as String: keyService,
            kSecAttrAccount as String: keyAccount,
        ]
        SecItemDelete(query as CFDictionary)
    }

    /// The data folder: encrypted by iOS until the phone is first unlocked after a restart, and never in
    /// an iCloud or computer backup.
    private static func protect(folder: String) {
        try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try? FileManager.default.setAttributes(
            [.protectionKey: FileProtectionType.completeUntilFirstUserAuthentication], ofItemAtPath: folder)
        var url = URL(fileURLWithPath: folder, isDirectory: true)
        var values = URLResourceValues()
        values.isExcludedFromBackup = true
        try? url.setResourceValues(values)
    }

    private static func base64url(_ data: Data) -> String {
        data.base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// Covers the app's window whenever it leaves the foreground, so the app switcher's snapshot shows a
    /// plain screen, not a visit.
    @objc(hideInAppSwitcher) public static func hideInAppSwitcher() {
        DispatchQueue.main.async {
            let center = NotificationCenter.default
            center.addObserver(forName: UIApplication.willResignActiveNotification, object: nil, queue: .main) { _ in
                guard privacyCover == nil,
                      let window = UIApplication.shared.connectedScenes
                          .compactMap({ ($0 as? UIWindowScene)?.keyWindow }).first else { return }
                let cover = UIView(frame: window.bounds)
                cover.backgroundColor = .systemBackground
                cover.autoresizingMask = [.flexibleWidth, .flexibleHeight]
                window.addSubview(cover)
                privacyCover = cover
            }
            center.addObserver(forName: UIApplication.didBecomeActiveNotification, object: nil, queue: .main) { _ in
                privacyCover?.removeFromSuperview()
                privacyCover = nil
            }
        }
    }

    /// Ask once, at start, not on a doorstep.
    @objc(askForNotifications) public static func askForNotifications() {
        UNUserNotificationCenter.current().requestAuthorization(options: [.alert, .sound]) { _, _ in }
    }

    /// Shows a notice now, or at `after` seconds from now if positive (reminders scheduled ahead, because
    /// iOS may not let the app run at the moment a check-in is due). Same id replaces the earlier one.
    /// Always an ordinary reminder: it may be seen in a family's living room.
    @objc(notify:title:body:after:)
    public static func notify(id: Int, title: String, body: String, after: Double) {
        let content = UNMutableNotificationContent()
        content.title = title
        content.body = body
        // The ordinary sound, which follows the phone's silent switch.
        content.sound = .default
        content.categoryIdentifier = "doorstep-reminder"
        // The text is fixed and discreet, so it may show on the lock screen in full.
        let trigger = after > 0 ? UNTimeIntervalNotificationTrigger(timeInterval: after, repeats: false) : nil
        let request = UNNotificationRequest(identifier: "doorstep-\(id)", content: content, trigger: trigger)
        UNUserNotificationCenter.current().add(request)
    }

    /// Withdraws a notice scheduled ahead that has not been shown yet.
    @objc(cancel:) public static func cancel(id: Int) {
        UNUserNotificationCenter.current().removePendingNotificationRequests(withIdentifiers: ["doorstep-\(id)"])
    }

    /// One tap per pulse; iPhones have no waveform API for third-party apps without Core Haptics files.
    @objc(vibrate:strong:) public static func vibrate(pulses: Int, strong: Bool) {
        DispatchQueue.main.async {
            let generator = UIImpactFeedbackGenerator(style: strong ? .heavy : .light)
            generator.prepare()
            for pulse in 0..<max(pulses, 1) {
                DispatchQueue.main.asyncAfter(deadline: .now() + Double(pulse) * 0.35) {
                    generator.impactOccurred()
                }
            }
        }
    }

    /// A system sound: 1005 is the alarm tone, 1007 the ordinary "new message" tone. These ids are
    /// undocumented but long stable; check them on a device. Rust asks for the alarm tone only for a late
    /// check-in the staff member chose to hear (the phone's settings; off unless turned on).
    @objc(playAlertSound:) public static func playAlertSound(urgent: Bool) {
        AudioServicesPlayAlertSound(SystemSoundID(urgent ? 1005 : 1007))
    }

    /// tel: and sms: links built and percent-encoded in Rust (src/platform/phone.rs). Opens the Phone or
    /// Messages app; nothing is called or sent without the user pressing the button there.
    @objc(open:) public static func open(uri: String) {
        guard let url = URL(string: uri) else { return }
        DispatchQueue.main.async { UIApplication.shared.open(url) }
    }

    /// A little time to finish syncing after the app leaves the screen; the reminders themselves are
    /// scheduled with notify(after:), which does not need the app to run.
    @objc(beginVisitTimer) public static func beginVisitTimer() {
        DispatchQueue.main.async {
            guard backgroundTask == .invalid else { return }
            backgroundTask = UIApplication.shared.beginBackgroundTask(withName: "Doorstep visit") {
                endBackgroundTask()
            }
        }
    }

    @objc(endVisitTimer) public static func endVisitTimer() {
        DispatchQueue.main.async { endBackgroundTask() }
    }

    /// Main queue only.
    private static func endBackgroundTask() {
        guard backgroundTask != .invalid else { return }
        UIApplication.shared.endBackgroundTask(backgroundTask)
        backgroundTask = .invalid
    }
}
