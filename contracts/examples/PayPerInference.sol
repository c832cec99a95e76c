// SPDX-License-Identifier: AGPL-3.0-only
pragma solidity ^0.8.20;

import {ILicenseManager} from "../../interfaces/solidity/ILicenseManager.sol";
import {IRoyaltyRouter} from "../../interfaces/solidity/IRoyaltyRouter.sol";

/// @dev The ERC-20 calls this example makes.
interface IERC20Like {
    function transferFrom(address from, address to, uint256 amount) external returns (bool);
    function approve(address spender, uint256 amount) external returns (bool);
    function allowance(address owner, address spender) external view returns (uint256);
}

/// @title PayPerInference: an example Solidity integrator of CodexField
/// @author CodexField
/// @notice An app that sells AI inference built on CodexField capsules. For its users it
///         (1) buys a capability credential on the user's behalf with `buyAccess` — the user
///         pays the terms' upfront fee in the app's token, the credential is minted to the
///         user, and the app passes the user's `maxUpfront` through to
///         `LicenseManager.purchase`, so nobody can raise the price under the user;
///         (2) checks a user's right to run an inference with `canInfer` (the credential's
///         `authorize` at the current time and purpose); and
///         (3) forwards tips to the capsules that served the answer with `tip`, which the
///         RoyaltyRouter credits to the capsule's vault and later propagates up its lineage.
///         Usage itself is metered by the UsageMeter: the user signs cumulative vouchers for
///         the serving node (see codexfield.sdk), so this contract never holds user funds
///         between calls.
/// @dev Every token movement is pull-then-forward inside one call: the contract's balance is
///      zero before and after each external function, and approvals are exact and reset.
contract PayPerInference {
    /// @dev The CodexField LicenseManager.
    ILicenseManager public immutable licenses;
    /// @dev The CodexField RoyaltyRouter.
    IRoyaltyRouter public immutable router;
    /// @dev The ERC-20 this app takes payment in (must be allowed by the router).
    IERC20Like public immutable token;

    /// @dev Credential bought for user `u` on terms `t` (the last one).
    mapping(address user => mapping(uint256 termsId => uint256 credentialId)) public credentialOf;

    /// @dev A credential bought for `user` on `termsId`; `paid` is the upfront fee.
    event AccessBought(address indexed user, uint256 indexed termsId, uint256 indexed credentialId, uint256 paid);
    /// @dev A tip of `amount` from `user` to capsule `capsuleId`.
    event Tipped(address indexed user, uint256 indexed capsuleId, uint256 amount);

    error WrongToken(address expected, address terms);
    error UpfrontAboveMax(uint256 fee, uint256 maxUpfront);
    error TransferFailed();

    constructor(ILicenseManager licenses_, IRoyaltyRouter router_, IERC20Like token_) {
        licenses = licenses_;
        router = router_;
        token = token_;
    }

    /// @notice Buys a credential on `termsId` for the caller, paying at most `maxUpfront`.
    /// @param termsId The LicenseManager terms to buy.
    /// @param maxUpfront The most the caller agrees to pay upfront (buyer protection).
    /// @return credentialId The credential minted to the caller.
    function buyAccess(uint256 termsId, uint256 maxUpfront) external returns (uint256 credentialId) {
        ILicenseManager.Terms memory t = licenses.terms(termsId);
        if (t.payment_token != address(token)) revert WrongToken(address(token), t.payment_token);
        uint256 fee = t.upfront_fee;
        if (fee > maxUpfront) revert UpfrontAboveMax(fee, maxUpfront);
        if (fee > 0) {
            _pull(msg.sender, fee);
            if (!token.approve(address(licenses), fee)) revert TransferFailed();
        }
        credentialId = licenses.purchase(termsId, msg.sender, maxUpfront);
        if (fee > 0 && token.allowance(address(this), address(licenses)) != 0) {
            if (!token.approve(address(licenses), 0)) revert TransferFailed();
        }
        credentialOf[msg.sender][termsId] = credentialId;
        emit AccessBought(msg.sender, termsId, credentialId, fee);
    }

    /// @notice Tips capsule `capsuleId` with `amount` of the app's token (royalty revenue).
    /// @param capsuleId The capsule that served the caller.
    /// @param amount The tip.
    function tip(uint256 capsuleId, uint256 amount) external {
        _pull(msg.sender, amount);
        if (!token.approve(address(router), amount)) revert TransferFailed();
        router.pay(capsuleId, address(token), amount);
        emit Tipped(msg.sender, capsuleId, amount);
    }

    /// @notice True when `user` may use `credentialId` for `purpose` now.
    /// @param user The app's user.
    /// @param credentialId A LicenseManager credential.
    /// @param purpose The scope bits of the inference (codexfield/scopes.py).
    /// @return ok Whether the credential authorizes it.
    function canInfer(address user, uint256 credentialId, uint256 purpose) external view returns (bool ok) {
        return licenses.authorize(credentialId, user, purpose, block.timestamp);
    }

    function _pull(address from, uint256 amount) private {
        if (!token.transferFrom(from, address(this), amount)) revert TransferFailed();
    }
}
